"""Fill a stream with a simulated fleet and run the native worker over it (in process or as a killable subprocess)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.fixtures.aws import create_stream
from wenu_stream.aws.provision import ensure_bucket, ensure_state_table, ensure_stats_table
from wenu_stream.config import Config, load_config
from wenu_stream.devtools.simulate import SimulationConfig, Tally, generate, parse_faults
from wenu_stream.devtools.simulate.outcomes import Outcomes
from wenu_stream.devtools.simulate.producer import KinesisProducer, Pacer, put_all

FAULTS = (
    "corrupt=0.01,unknown_key=0.01,tamper=0.01,malformed=0.01,duplicate=0.05,reorder=0.05,reorder_bound_s=20"
)


def write_keyring(path: Path, keys: dict[str, bytes]) -> Path:
    path.write_text(json.dumps({k: base64.b64encode(v).decode() for k, v in keys.items()}))
    return path


def fill_stream(
    stream: str,
    keys: dict[str, bytes],
    *,
    shards: int = 4,
    devices: int = 60,
    duration_s: float = 120,
    aggregate: int = 10,
    seed: int = 11,
) -> Outcomes:
    """Create ``stream`` and put a simulated fleet with every fault; return what consumers must make of it."""
    create_stream(stream, shards)
    producer = KinesisProducer(stream)
    sim = SimulationConfig(
        devices=devices,
        interval_s=2.0,
        duration_s=duration_s,
        seed=seed,
        aggregate=aggregate,
        faults=parse_faults(FAULTS),
        shard_ranges=producer.open_shard_ranges() if aggregate else (),
    )
    tally = Tally()
    put_all(generate(sim, keys), producer.put, Pacer("none"), tally=tally)
    return tally.result()


def run_config(stream: str, name: str, keyring: Path, **extra: Any) -> dict[str, str]:
    """WENU_* settings for a worker of run ``name``: its own lease table, state table, bucket and catalog."""
    env = {
        "WENU_CATALOG_URL": f"sqlite:///{keyring.parent / (name + '-catalog.db')}",
        "WENU_KINESIS_STREAM": stream,
        "WENU_KEYRING_FILE": str(keyring),
        "WENU_LEASE_TABLE": f"{name}-leases",
        "WENU_SINKS_STATE_TABLE": f"{name}-state",
        "WENU_STATS_TABLE": f"{name}-stats",
        "WENU_SINKS_BUCKET": f"{name}-data",
        "WENU_LEASE_FAILOVER_MS": "2000",
        "WENU_LEASE_DISCOVERY_INTERVAL_MS": "1000",
        "WENU_KINESIS_POLL_INTERVAL_MS": "50",
        "WENU_KINESIS_CHECKPOINT_INTERVAL_S": "1.0",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


def prepare(env: dict[str, str], catalog: dict[str, Any] | None = None) -> Config:
    """Provision a run's tables and bucket, and import ``catalog`` into its catalog store."""
    config = load_config(env)
    ensure_state_table(config, {})
    ensure_bucket(config, {})
    ensure_stats_table(config, {})
    if catalog is not None:
        import_catalog(config, catalog)
    return config


def import_catalog(config: Config, catalog: dict[str, Any]) -> None:
    from wenu_stream.catalog.document import validate
    from wenu_stream.catalog.store import CatalogStore

    checked = validate(catalog)
    assert checked.document is not None, checked.problems
    with CatalogStore(config.catalog.url) as store:
        store.import_document(checked.document)


def fleet_catalog_for(devices: int) -> dict[str, Any]:
    """The catalog of the simulated fleet that ``fill_stream`` puts (it depends on the device count only)."""
    from wenu_stream.devtools.simulate import fleet_catalog

    return fleet_catalog(SimulationConfig(devices=devices))


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`wenu-stream run` as a subprocess with the test's stack and settings."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("WENU_")} | env
    return subprocess.Popen(
        [sys.executable, "-m", "wenu_stream", "run"],
        env=full,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "ab"),
    )
