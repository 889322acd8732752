"""What consumers see of the catalog: an immutable snapshot and a read-through cache (pure apart from ``load``).

A :class:`CatalogSnapshot` is built once per reload from a
:class:`~wenu_stream.catalog.document.CatalogDocument`, with dicts for O(1)
lookups: ``device -> ch -> ChannelInfo``, ``series -> ChannelInfo`` and
``series -> rules``. :class:`CatalogDirectory` holds the current snapshot and,
once ``refresh_s`` has passed on the injected clock, asks the store for its
version (cheap) and reloads only when it moved. A catalog change therefore
takes effect on the next refresh, without a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import msgspec

from wenu_stream.alarms.rules import AlarmRule, matches
from wenu_stream.catalog.document import CatalogDocument
from wenu_stream.model import Clock


class ChannelInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Where a device channel's readings go, and how to normalise them (``v * scale + offset``)."""

    series: str
    company: str
    site: str
    timezone: str
    kind: str
    unit: str
    scale: float
    offset: float


class CatalogSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The catalog at one version. Treat the mappings as read-only: snapshots are shared."""

    version: int
    devices: Mapping[str, Mapping[str, ChannelInfo]]  # device -> ch -> info
    series: Mapping[str, ChannelInfo]
    rules: tuple[AlarmRule, ...]
    rules_by_series: Mapping[str, tuple[AlarmRule, ...]]

    def lookup(self, device: str, ch: str) -> ChannelInfo | None:
        """The series a device channel maps to, or None."""
        channels = self.devices.get(device)
        return None if channels is None else channels.get(ch)

    def rules_for(self, series: str) -> tuple[AlarmRule, ...]:
        """The rules watching ``series`` (by name or by ``match``), in rule-id order."""
        return self.rules_by_series.get(series, ())


EMPTY = CatalogSnapshot(version=0, devices={}, series={}, rules=(), rules_by_series={})


def build_snapshot(version: int, document: CatalogDocument) -> CatalogSnapshot:
    """Index a valid document for lookups.

    Args:
        version: the store's catalog version the document was read at.
        document: a document that passed validation (ids unique).
    """
    devices: dict[str, dict[str, ChannelInfo]] = {}
    series: dict[str, ChannelInfo] = {}
    for company in document.companies:
        for site in company.sites:
            for device in site.devices:
                channels = devices.setdefault(device.id, {})
                for c in device.channels:
                    info = ChannelInfo(
                        series=c.series,
                        company=company.id,
                        site=site.id,
                        timezone=site.timezone,
                        kind=c.kind,
                        unit=c.unit,
                        scale=c.scale,
                        offset=c.offset,
                    )
                    channels[c.ch] = info
                    series[c.series] = info
    rules = tuple(sorted(document.alarm_rules, key=lambda r: r.id))
    by_series: dict[str, tuple[AlarmRule, ...]] = {}
    for name, info in series.items():
        watching = tuple(r for r in rules if matches(r, info))
        if watching:
            by_series[name] = watching
    return CatalogSnapshot(
        version=version, devices=devices, series=series, rules=rules, rules_by_series=by_series
    )


class CatalogDirectory:
    """Read-through cache of the catalog, refreshed every ``refresh_s`` seconds of the injected clock.

    Refresh, when due:
        1. ask ``version()`` (if given); same version as the snapshot -> keep it, restart the interval;
        2. otherwise ``load()`` a new snapshot and swap it in.

    The first load happens in the constructor, and its errors propagate (no
    catalog, no start). A later failed refresh keeps serving the last snapshot
    (a stale catalog beats a stopped pipeline): the exception is kept in
    ``last_error``, ``age_s`` keeps growing so the metric shows it, and the
    next attempt waits a full interval so an outage is not hammered per batch.
    """

    def __init__(
        self,
        load: Callable[[], CatalogSnapshot],
        now: Clock,
        refresh_s: float,
        version: Callable[[], int] | None = None,
    ) -> None:
        self._load = load
        self._version = version
        self._now = now
        self._refresh_ms = int(refresh_s * 1000)
        self.last_error: Exception | None = None
        self._snapshot = load()
        self._loaded_at = self._checked_at = now()

    @property
    def age_s(self) -> float:
        """Seconds since the snapshot was last confirmed current (loaded, or its version checked)."""
        return (self._now() - self._loaded_at) / 1000

    def snapshot(self) -> CatalogSnapshot:
        """The current snapshot, refreshed first when the interval has passed."""
        now = self._now()
        if now - self._checked_at >= self._refresh_ms:
            self._checked_at = now
            self._refresh(now)
        return self._snapshot

    def refresh(self) -> CatalogSnapshot:
        """Refresh now, whatever the interval (an operator's nudge, or a test)."""
        now = self._now()
        self._checked_at = now
        self._refresh(now)
        return self._snapshot

    def _refresh(self, now: int) -> None:
        try:
            if self._version is None or self._version() != self._snapshot.version:
                self._snapshot = self._load()
        except Exception as exc:  # noqa: BLE001 - deliberate: keep the last snapshot, see the class docstring
            self.last_error = exc
            return
        self.last_error = None
        self._loaded_at = now

    def lookup(self, device: str, ch: str) -> ChannelInfo | None:
        """The series a device channel maps to (refreshing if due), or None."""
        return self.snapshot().lookup(device, ch)

    def rules_for(self, series: str) -> tuple[AlarmRule, ...]:
        """The rules watching ``series`` (refreshing if due)."""
        return self.snapshot().rules_for(series)

    def series_info(self, series: str) -> ChannelInfo | None:
        """What the catalog says about ``series`` (refreshing if due), or None."""
        return self.snapshot().series.get(series)
