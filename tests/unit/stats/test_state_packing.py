"""The packed series-state blob: exact round trip, the earlier layout still read, one write unit for an hour."""

from __future__ import annotations

import random
import zlib

import msgspec

from wenu_stream.stats import items
from wenu_stream.stats.aggregates import Point, WindowAgg
from wenu_stream.stats.engine import Entry, Fence, SeriesState

T0 = 1_796_025_600_000


def counter_state(entries: int = 61, devices: tuple[str, ...] = ("EM-000123",)) -> SeriesState:
    rng = random.Random(3)
    micro, buffer = 12_345_678_901, []
    for i in range(entries):
        micro = micro + rng.randrange(0, 2_000_000) if i != 30 else 1_250_000  # a register restart
        buffer.append(
            Entry(T0 + i * 60_000 + rng.randrange(1000), i + 1, i % 3, devices[i % len(devices)], micro)
        )
    buffer.sort()
    return SeriesState(series="acme-s03.em-000123.energy", kind="counter", timezone="Europe/Madrid",
                       newest=buffer[-1].t, fence=Fence("shardId-000000000001", 49_650 * 10**51 + 7, 3, 2),
                       buffer=buffer)  # fmt: skip


REDO = [items.RedoEntry("15m", T0, WindowAgg(count=3, sum_micro=5, min=1.0, max=2.5, consumption_micro=77,
                                             first=Point(T0, 1, 0, "EM-000123", 1.0),
                                             last=Point(T0 + 9, 2, 0, "EM-000123", 2.5)))]  # fmt: skip


def test_a_counter_state_round_trips_exactly() -> None:
    for devices in (("EM-000123",), ("EM-1", "EM-2", "EM-3")):
        state = counter_state(devices=devices)
        item = items.state_item(state, REDO, expires=2_000_000_000)
        assert items.decode_state(item) == (state, items.fence_text(state.fence), REDO)
        assert "redo" not in item  # inside the one blob


def test_an_empty_buffer_and_an_empty_redo_round_trip() -> None:
    state = SeriesState(series="s", kind="gauge", timezone="UTC")
    assert items.decode_state(items.state_item(state, [], expires=1)) == (state, "", [])


def test_an_item_of_the_earlier_layout_is_still_read() -> None:
    state = counter_state()
    enc = msgspec.json.Encoder()
    old = items.state_item(state, REDO, expires=1) | {
        "state": {"B": enc.encode(state)},
        "redo": {"B": zlib.compress(enc.encode(REDO), 1)},
    }
    assert items.decode_state(old) == (state, items.fence_text(state.fence), REDO)


def test_an_hour_of_counter_readings_fits_in_one_write_unit() -> None:
    item = items.state_item(counter_state(), REDO, expires=2_000_000_000)
    size = sum(len(k) + len(next(iter(v.values()))) for k, v in item.items())
    assert size <= 1024, size
