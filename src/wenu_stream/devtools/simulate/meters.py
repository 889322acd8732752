"""Simulated meters: electricity, water and temperature. Pure: time and randomness come in as arguments.

Each meter keeps its own physical state (counter registers) and turns one
measurement instant into the readings of one message. Gauges follow a daily
cycle by the site's local hour plus noise; counters integrate their gauge over
the step, so they only ever grow, except for an occasional reset to 0.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from typing import Final, Protocol
from zoneinfo import ZoneInfo

from wenu_stream.records.payload import Reading

HOUR_MS: Final = 3_600_000
_TWO_PI: Final = 2 * math.pi


class Meter(Protocol):
    """One simulated device: ``read`` advances its state by ``dt_s`` and returns its readings at ``t``."""

    def read(self, t: int, dt_s: float, hour: float, rng: random.Random, reset: bool) -> tuple[Reading, ...]:
        """Measure at ``t`` (epoch ms), ``dt_s`` after the previous measurement, at local ``hour`` (0..24)."""
        ...


def load_profile(hour: float) -> float:
    """Share of the peak load at a local hour: about 0.15 around 03:00, 1.0 around 15:00."""
    return 0.575 - 0.425 * math.cos(_TWO_PI * (hour - 3.0) / 24.0)


def water_profile(hour: float) -> float:
    """Share of peak water use: a morning peak near 07:30 and an evening peak near 20:00, little at night."""
    morning = math.exp(-(((hour - 7.5) / 1.5) ** 2))
    evening = math.exp(-(((hour - 20.0) / 2.0) ** 2))
    return 0.05 + 0.95 * max(morning, 0.8 * evening)


class ElectricityMeter:
    """``active_power_w`` and ``voltage_v`` (gauges) and ``energy_kwh`` (counter, the integral of power)."""

    __slots__ = ("energy_kwh", "nominal_v", "peak_w")

    def __init__(self, rng: random.Random) -> None:
        self.peak_w = rng.lognormvariate(math.log(8_000.0), 0.8)
        self.nominal_v = rng.uniform(223.0, 227.0)
        self.energy_kwh = rng.uniform(0.0, 50_000.0)

    def read(self, t: int, dt_s: float, hour: float, rng: random.Random, reset: bool) -> tuple[Reading, ...]:
        """Return power, voltage and energy at ``t``."""
        share = load_profile(hour)
        power = max(0.0, self.peak_w * share * (1.0 + rng.gauss(0.0, 0.05)))
        volts = self.nominal_v - 2.5 * share + rng.gauss(0.0, 0.6)
        self.energy_kwh = 0.0 if reset else self.energy_kwh + power * dt_s / 3.6e6
        return (
            Reading("active_power_w", t, round(power, 1)),
            Reading("voltage_v", t, round(min(230.0, max(220.0, volts)), 2)),
            Reading("energy_kwh", t, round(self.energy_kwh, 4)),
        )


class WaterMeter:
    """``flow_lpm`` (gauge, often 0) and ``volume_m3`` (counter, the integral of flow)."""

    __slots__ = ("peak_lpm", "volume_m3")

    def __init__(self, rng: random.Random) -> None:
        self.peak_lpm = rng.uniform(10.0, 120.0)
        self.volume_m3 = rng.uniform(0.0, 5_000.0)

    def read(self, t: int, dt_s: float, hour: float, rng: random.Random, reset: bool) -> tuple[Reading, ...]:
        """Return flow and volume at ``t``."""
        share = water_profile(hour)
        flowing = rng.random() < 0.2 + 0.75 * share
        flow = max(0.0, self.peak_lpm * share * rng.uniform(0.6, 1.2)) if flowing else 0.0
        self.volume_m3 = 0.0 if reset else self.volume_m3 + flow * dt_s / 60_000.0
        return (Reading("flow_lpm", t, round(flow, 2)), Reading("volume_m3", t, round(self.volume_m3, 5)))


class TemperatureSensor:
    """``temperature_c`` (gauge): warmest mid-afternoon, coolest before dawn."""

    __slots__ = ("amplitude", "mean_c")

    def __init__(self, rng: random.Random) -> None:
        self.mean_c = rng.uniform(12.0, 24.0)
        self.amplitude = rng.uniform(2.0, 7.0)

    def read(self, t: int, dt_s: float, hour: float, rng: random.Random, reset: bool) -> tuple[Reading, ...]:
        """Return the temperature at ``t`` (it has no counter, so ``reset`` does nothing)."""
        value = self.mean_c - self.amplitude * math.cos(_TWO_PI * (hour - 3.0) / 24.0) + rng.gauss(0.0, 0.2)
        return (Reading("temperature_c", t, round(value, 2)),)


# Device id prefix -> meter class; the prefix is what the fleet names its devices with.
METERS: Final[dict[str, type[ElectricityMeter | WaterMeter | TemperatureSensor]]] = {
    "EM": ElectricityMeter,
    "WM": WaterMeter,
    "TM": TemperatureSensor,
}
HAS_COUNTER: Final = frozenset({"EM", "WM"})


class LocalClock:
    """Local hour of an instant in a time zone, with the UTC offset cached per zone and UTC hour."""

    __slots__ = ("_offsets",)

    def __init__(self) -> None:
        self._offsets: dict[tuple[str, int], int] = {}

    def hour(self, t: int, zone: str) -> float:
        """Local hour (0 <= h < 24, fractional) of epoch-ms ``t`` in IANA ``zone``."""
        key = (zone, t // HOUR_MS)
        offset = self._offsets.get(key)
        if offset is None:
            offset = self._offsets[key] = _utc_offset_ms(key[1] * HOUR_MS, zone)
        return ((t + offset) % (24 * HOUR_MS)) / HOUR_MS


def _utc_offset_ms(t: int, zone: str) -> int:
    moment = datetime.fromtimestamp(t / 1000, UTC).astimezone(ZoneInfo(zone))
    offset = moment.utcoffset()
    return 0 if offset is None else int(offset.total_seconds() * 1000)
