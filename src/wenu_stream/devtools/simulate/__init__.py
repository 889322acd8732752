"""Simulated meters for tests, benchmarks and the demo: realistic readings, faults, and a producer.

The generating side is pure (``generate``, ``fleet_catalog``, ``expected_outcomes``);
``producer`` is the edge that puts records into Kinesis.
"""

from __future__ import annotations

from wenu_stream.devtools.simulate.faults import Fault
from wenu_stream.devtools.simulate.fleet import build_fleet, fleet_catalog
from wenu_stream.devtools.simulate.generator import ProducedRecord, UserRecord, check_keys, generate
from wenu_stream.devtools.simulate.outcomes import Outcomes, Tally, expected_outcomes
from wenu_stream.devtools.simulate.scenario import FaultRates, SimulationConfig, parse_faults

__all__ = [
    "Fault",
    "FaultRates",
    "Outcomes",
    "ProducedRecord",
    "SimulationConfig",
    "Tally",
    "UserRecord",
    "build_fleet",
    "check_keys",
    "expected_outcomes",
    "fleet_catalog",
    "generate",
    "parse_faults",
]
