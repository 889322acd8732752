"""Enrichment: a decoded message's readings become points of business series (pure).

Each reading is looked up in a catalog snapshot by ``(device, ch)`` and
normalised (``v * scale + offset``). A reading the catalog does not map is not
dropped: it comes back as :class:`Unmapped` with a reason, and the runtime
keeps it in quarantine until the catalog maps it (re-drive).
"""

from __future__ import annotations

import math

from wenu_stream.catalog.directory import CatalogSnapshot, ChannelInfo
from wenu_stream.model import Position, SeriesReading, Unmapped, UnmappedReason
from wenu_stream.records.payload import Message


def enrich(
    message: Message, position: Position, snapshot: CatalogSnapshot, partition_key: str = ""
) -> tuple[list[SeriesReading], list[Unmapped]]:
    """Map every reading of ``message`` onto its series.

    Args:
        message: a decoded, validated message.
        position: where the message sits in its shard.
        snapshot: the catalog to map with (one snapshot per batch).
        partition_key: the message's partition key, kept on its readings.

    Returns:
        The series readings and the unmapped readings, each in reading order.
    """
    channels = snapshot.devices.get(message.device)
    if channels is None:
        return [], _unmapped(message, position, UnmappedReason.UNKNOWN_DEVICE)
    mapped: list[SeriesReading] = []
    unmapped: list[Unmapped] = []
    for index, reading in enumerate(message.readings):
        info = channels.get(reading.ch)
        value = reading.v * info.scale + info.offset if info is not None else 0.0
        if info is not None and math.isfinite(value):
            mapped.append(
                series_reading(
                    info,
                    message.device,
                    message.seq,
                    index,
                    reading.ch,
                    reading.t,
                    reading.v,
                    value,
                    position,
                    message.sent_at,
                    partition_key,
                )
            )
        else:
            reason = UnmappedReason.UNKNOWN_CHANNEL if info is None else UnmappedReason.VALUE_OUT_OF_RANGE
            unmapped.append(
                Unmapped(
                    device=message.device,
                    ch=reading.ch,
                    t=reading.t,
                    v=reading.v,
                    seq=message.seq,
                    index=index,
                    reason=reason,
                    position=position,
                    sent_at=message.sent_at,
                )
            )
    return mapped, unmapped


def series_reading(
    info: ChannelInfo,
    device: str,
    seq: int,
    index: int,
    ch: str,
    t: int,
    raw: float,
    value: float,
    position: Position,
    sent_at: int = 0,
    partition_key: str = "",
) -> SeriesReading:
    """One reading placed on its series (``value`` already normalised)."""
    return SeriesReading(
        series=info.series,
        company=info.company,
        site=info.site,
        timezone=info.timezone,
        kind=info.kind,
        unit=info.unit,
        device=device,
        ch=ch,
        seq=seq,
        index=index,
        t=t,
        value=value,
        raw_value=raw,
        position=position,
        sent_at=sent_at,
        partition_key=partition_key,
    )


def _unmapped(message: Message, position: Position, reason: UnmappedReason) -> list[Unmapped]:
    return [
        Unmapped(
            device=message.device,
            ch=r.ch,
            t=r.t,
            v=r.v,
            seq=message.seq,
            index=i,
            reason=reason,
            position=position,
            sent_at=message.sent_at,
        )
        for i, r in enumerate(message.readings)
    ]


def enrich_unmapped(
    items: list[Unmapped], snapshot: CatalogSnapshot
) -> tuple[list[SeriesReading], list[Unmapped]]:
    """Map quarantined readings with a newer catalog: those it now maps, and those it still does not."""
    mapped: list[SeriesReading] = []
    still: list[Unmapped] = []
    for item in items:
        info = snapshot.lookup(item.device, item.ch)
        value = item.v * info.scale + info.offset if info is not None else math.nan
        if info is None or not math.isfinite(value):
            still.append(item)
            continue
        mapped.append(
            series_reading(
                info,
                item.device,
                item.seq,
                item.index,
                item.ch,
                item.t,
                item.v,
                value,
                item.position,
                item.sent_at,
            )
        )
    return mapped, still
