"""The simulated fleet: companies, sites, devices, and the catalog document that describes them.

The fleet depends only on the number of devices, never on the seed, so the
catalog of a demo stays the same from run to run. The document follows
``docs/catalog.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import msgspec

if TYPE_CHECKING:
    from wenu_stream.devtools.simulate.scenario import SimulationConfig


class Site(msgspec.Struct, frozen=True):
    """A building of a client company, in an IANA time zone."""

    id: str
    name: str
    timezone: str


class Company(msgspec.Struct, frozen=True):
    """A client company and its sites."""

    id: str
    name: str
    sites: tuple[Site, ...]


class Device(msgspec.Struct, frozen=True, kw_only=True):
    """One simulated device: ``kind`` is the id prefix (``EM``, ``WM``, ``TM``)."""

    id: str
    kind: str
    index: int
    company: str
    site: str
    timezone: str


COMPANIES: Final = (
    Company(
        "acme",
        "ACME S.A.",
        (
            Site("acme-hq", "Casa Matriz", "America/Santiago"),
            Site("acme-plant", "Planta Quilicura", "America/Santiago"),
        ),
    ),
    Company(
        "iberia",
        "Iberia Retail S.L.",
        (
            Site("iberia-mad", "Tienda Gran Via", "Europe/Madrid"),
            Site("iberia-bcn", "Tienda Diagonal", "Europe/Madrid"),
        ),
    ),
    Company("globex", "Globex Data Ltd", (Site("globex-dc1", "Data Centre 1", "UTC"),)),
)
_SITES: Final = tuple((company, site) for company in COMPANIES for site in company.sites)
# Every fourth device: two electricity meters, a water meter, a temperature sensor.
_KIND_CYCLE: Final = ("EM", "EM", "WM", "TM")

# kind -> (channel, series suffix, kind, unit)
CHANNELS: Final = {
    "EM": (
        ("active_power_w", "power", "gauge", "W"),
        ("voltage_v", "voltage", "gauge", "V"),
        ("energy_kwh", "energy", "counter", "kWh"),
    ),
    "WM": (("flow_lpm", "flow", "gauge", "L/min"), ("volume_m3", "volume", "counter", "m3")),
    "TM": (("temperature_c", "temperature", "gauge", "degC"),),
}


def build_fleet(devices: int) -> tuple[Device, ...]:
    """Name ``devices`` devices (EM-000001, WM-000001, TM-000001, ...) and spread them over the sites."""
    counts = dict.fromkeys(_KIND_CYCLE, 0)
    fleet = []
    for index in range(devices):
        kind = _KIND_CYCLE[index % len(_KIND_CYCLE)]
        counts[kind] += 1
        company, site = _SITES[index % len(_SITES)]
        fleet.append(
            Device(
                id=f"{kind}-{counts[kind]:06d}",
                kind=kind,
                index=index,
                company=company.id,
                site=site.id,
                timezone=site.timezone,
            )
        )
    return tuple(fleet)


def series_id(device: Device, suffix: str) -> str:
    """The series of one channel of a device, e.g. ``acme-hq.em-000001.power``."""
    return f"{device.site}.{device.id.lower()}.{suffix}"


def fleet_catalog(cfg: SimulationConfig) -> dict[str, Any]:
    """Describe the fleet of ``cfg`` as a catalog document (``docs/catalog.md``), alarm rules included."""
    fleet = build_fleet(cfg.devices)
    by_site: dict[str, list[Device]] = {}
    for device in fleet:
        by_site.setdefault(device.site, []).append(device)
    companies = [
        {"id": c.id, "name": c.name, "sites": [_site_doc(s, by_site.get(s.id, [])) for s in c.sites]}
        for c in COMPANIES
    ]
    return {"companies": companies, "alarm_rules": alarm_rules(fleet, cfg.interval_s)}


def _site_doc(site: Site, devices: list[Device]) -> dict[str, Any]:
    return {
        "id": site.id,
        "name": site.name,
        "timezone": site.timezone,
        "devices": [_device_doc(d) for d in devices],
    }


def _device_doc(device: Device) -> dict[str, Any]:
    return {
        "id": device.id,
        "channels": [
            {
                "ch": ch,
                "series": series_id(device, suffix),
                "kind": kind,
                "unit": unit,
                "scale": 1.0,
                "offset": 0.0,
            }
            for ch, suffix, kind, unit in CHANNELS[device.kind]
        ],
    }


def alarm_rules(fleet: tuple[Device, ...], interval_s: float = 1.0) -> list[dict[str, Any]]:
    """A rule of every type on chosen devices, plus two ``match`` rules, none firing on normal readings.

    Normal readings stay inside bounds the meters guarantee: voltage is clamped
    to 220..230 V (so it never passes 250 V, nor moves more than 10 V per reading,
    600 V/min at a 1 s interval), temperatures stay near or below 32 degC, a water meter
    draws at most 207 m3 a day, and a device reports every ``interval_s``
    (``no_data`` waits three intervals, at least 30 s). Electricity peaks are
    log-normal, so the daily energy bound (1500 kWh) is a 3-sigma one; it takes
    a simulated day to matter. ``simulate.anomalies`` breaks each of them once.
    """
    by_kind: dict[str, list[Device]] = {}
    for device in fleet:
        by_kind.setdefault(device.kind, []).append(device)
    em, tm, wm = by_kind.get("EM", []), by_kind.get("TM", []), by_kind.get("WM", [])
    rules: list[dict[str, Any]] = []
    if em:
        rules += [
            {
                "id": "voltage-high",
                "series": series_id(em[0], "voltage"),
                "type": "threshold",
                "op": ">",
                "value": 250,
                "clear": 240,
                "for_s": 20,
                "severity": "critical",
            },
            {
                "id": "daily-energy",
                "series": series_id(em[0], "energy"),
                "type": "consumption",
                "window": "1d",
                "max": 1500,
                "severity": "major",
            },
        ]
    if len(em) > 1:
        rules.append(
            {
                "id": "voltage-jump",
                "series": series_id(em[1], "voltage"),
                "type": "rate_of_change",
                "max_abs_delta_per_min": 600,
                "severity": "major",
            }
        )
    if len(em) > 2:
        rules.append(
            {
                "id": "power-silent",
                "series": series_id(em[2], "power"),
                "type": "no_data",
                "after_s": max(30.0, 3 * interval_s),
                "severity": "warning",
            }
        )
    if tm:
        rules += [
            {
                "id": "temperature-stuck",
                "series": series_id(tm[0], "temperature"),
                "type": "stuck",
                "count": 5,
                "severity": "minor",
            },
            {
                "id": "temperature-hot",
                "match": {"unit": "degC", "kind": "gauge"},
                "type": "threshold",
                "op": ">",
                "value": 40,
                "clear": 38,
                "for_s": 300,
                "severity": "warning",
            },
        ]
    if wm:
        rules.append(
            {
                "id": "water-daily",
                "match": {"unit": "m3", "kind": "counter"},
                "type": "consumption",
                "window": "1d",
                "max": 250,
                "severity": "major",
            }
        )
    return rules
