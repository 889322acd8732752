"""A stalled processing application never delays an alarm (DESIGN.md: two applications, own checkpoints).

Both applications run in one event loop, as in the demo, over the same stream.
Processing is broken (its bucket for dead letters and staging is missing), so
its worker retries its first commit for as long as it runs (a missing bucket is
no fault of the data: nothing is skipped), not ready, never checkpointing, and
gives its batch back when stopped. The alarms application, with its own lease table
and checkpoints, publishes every expected notification meanwhile.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.test_alarms_app import (
    alarms_env,
    expected_moves,
    fill_with_anomalies,
    moves,
    prepare_alarms,
    received,
)
from tests.support.records import KEYS
from tests.support.scenario import run_config, write_keyring
from wenu_stream.aws.provision import ensure_state_table
from wenu_stream.cli.run import consume
from wenu_stream.config import Config, load_config
from wenu_stream.devtools.simulate.generator import expected_alarms
from wenu_stream.drivers.native.leases import read_leases

pytestmark = pytest.mark.integration


async def crash_looping(config: Config, stop: asyncio.Event) -> list[int]:
    """Run a worker of ``config`` again each time it stops, until ``stop`` is set; return its exit codes."""
    codes: list[int] = []
    while not stop.is_set():
        codes.append(await consume(config, stop=stop))
        await asyncio.sleep(0.2)
    return codes


@pytest.mark.slow
async def test_a_broken_processing_app_never_delays_an_alarm(
    aws_stack: object, unique_name: str, tmp_path: Path
) -> None:
    keyring = write_keyring(tmp_path / "keys.json", KEYS)
    sim = fill_with_anomalies(unique_name, devices=40, duration_s=40, seed=9)
    a_env = alarms_env(unique_name, f"{unique_name}-a", keyring, WENU_KINESIS_IDLE_EXIT_S=3)
    alarms, queue = prepare_alarms(a_env, f"{unique_name}-a", sim)
    p_env = run_config(
        unique_name,
        f"{unique_name}-p",
        keyring,
        WENU_APP="processing",
        WENU_SINKS_BUCKET=f"{unique_name}-missing",
        WENU_CATALOG_URL=a_env["WENU_CATALOG_URL"],
    )
    processing = load_config(p_env)
    ensure_state_table(processing, {})  # everything but its bucket
    assert (
        load_config({"WENU_APP": "alarms"}).lease_table != load_config({"WENU_APP": "processing"}).lease_table
    )
    assert alarms.lease_table != processing.lease_table

    stop_processing = asyncio.Event()
    broken = asyncio.create_task(crash_looping(processing, stop_processing))
    try:
        assert await asyncio.wait_for(consume(alarms), timeout=240) == 0
    finally:
        stop_processing.set()
        codes = await asyncio.wait_for(broken, timeout=120)

    assert moves(received(queue)) == expected_moves(expected_alarms(sim))
    assert all(lease.checkpoint.isdigit() for lease in read_leases(alarms.lease_table))
    stalled = read_leases(processing.lease_table)
    assert stalled and not any(
        lease.checkpoint.isdigit() for lease in stalled
    )  # it read, and never committed
    assert codes and set(codes) == {0}  # it kept retrying until stopped, then stopped within its grace
