"""A sink that refuses a record, and a sink that is down (ingest.failures), on the real local stack.

- A reading DynamoDB cannot store (a value of 1e200: "Number overflow") is refused by the stats sink
  (processing) and by the alarm ledger (alarms): each application dead-letters that record alone as
  ``sink_rejected``, checkpoints past it, and its other effects equal a run over the same stream without it.
- A DynamoDB outage (a fault proxy cutting every connection) stops nothing for good: the worker retries,
  not ready meanwhile, and once DynamoDB is back its effects equal an undisturbed run's.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.fixtures.aws import create_stream
from tests.integration.test_alarms_app import (
    alarms_env,
    expected_moves,
    fill_with_anomalies,
    moves,
    prepare_alarms,
    received,
)
from tests.support.driver import eventually
from tests.support.effects import last_checkpoints, letters_of, staged_rows, stats_table, tail_sequences
from tests.support.fault_proxy import FaultProxy
from tests.support.probes import readyz
from tests.support.records import KEYS, envelope
from tests.support.scenario import FAULTS, prepare, run_config, write_keyring
from wenu_stream.cli.run import consume
from wenu_stream.devtools.emulator.stack import free_port
from wenu_stream.devtools.simulate import SimulationConfig, fleet_catalog, generate, parse_faults
from wenu_stream.devtools.simulate.producer import KinesisProducer, Pacer, put_all
from wenu_stream.records.payload import Message, Reading

pytestmark = pytest.mark.integration


def poison_for(sim: SimulationConfig) -> tuple[Message, str]:
    """A reading of a thresholded series whose value DynamoDB cannot store; and its series."""
    catalog = fleet_catalog(sim)
    rule = next(r for r in catalog["alarm_rules"] if r["type"] == "threshold")
    device, ch = next(
        (d["id"], c["ch"])
        for company in catalog["companies"]
        for site in company["sites"]
        for d in site["devices"]
        for c in d["channels"]
        if c["series"] == rule["series"]
    )
    t = sim.start_ms + int(sim.duration_s * 1000) + 5_000  # after the fleet: the alarm engine applies it
    return Message(device=device, seq=10**6, sent_at=t + 100, readings=(Reading(ch=ch, t=t, v=1e200),)), rule[
        "series"
    ]


def put_poison(stream: str, sim: SimulationConfig) -> str:
    message, _ = poison_for(sim)
    out = boto3.client("kinesis").put_record(
        StreamName=stream, Data=envelope(message), PartitionKey=message.device
    )
    return str(out["SequenceNumber"])


@pytest.mark.slow
async def test_a_record_a_sink_refuses_is_dead_lettered_alone_and_both_apps_go_on(
    aws_stack: object, unique_name: str, tmp_path: Path
) -> None:
    keyring = write_keyring(tmp_path / "keys.json", KEYS)
    sim = fill_with_anomalies(unique_name, devices=24, duration_s=40, seed=3)
    catalog = fleet_catalog(sim)
    quick = {"WENU_KINESIS_IDLE_EXIT_S": 2}
    reference = prepare(run_config(unique_name, f"{unique_name}-r", keyring, **quick), catalog)
    assert await consume(reference) == 0  # the stream without the poison

    poison = put_poison(unique_name, sim)
    processing = prepare(run_config(unique_name, f"{unique_name}-p", keyring, **quick), catalog)
    a_env = alarms_env(unique_name, f"{unique_name}-a", keyring, **quick)
    alarms, queue = prepare_alarms(a_env, f"{unique_name}-a", sim)
    assert await consume(processing) == 0
    assert await consume(alarms) == 0

    tails = tail_sequences(unique_name)
    assert poison in tails.values()
    for config in (processing, alarms):  # checkpointed past the poison, to the end of every shard
        assert last_checkpoints(config.lease_table) == tails
    refused = [letter for letter in letters_of(processing) if letter[1] == "sink_rejected"]
    assert [letter[0][1] for letter in refused] == [int(poison)]
    assert sorted(set(letters_of(processing)) - set(refused)) == letters_of(reference)
    assert [letter[0][1] for letter in letters_of(alarms) if letter[1] == "sink_rejected"] == [int(poison)]
    assert stats_table(processing) == stats_table(reference)
    assert staged_rows(processing) == staged_rows(reference)
    assert moves(received(queue)) == expected_moves_of(sim)


def expected_moves_of(sim: SimulationConfig) -> Any:
    from wenu_stream.devtools.simulate.generator import expected_alarms

    return expected_moves(expected_alarms(sim))


@pytest.mark.slow
async def test_a_dynamodb_outage_is_waited_out_and_nothing_is_lost_or_counted_twice(
    aws_stack: object, unique_name: str, tmp_path: Path
) -> None:
    """Readings keep arriving through a DynamoDB outage of WENU_TEST_OUTAGE_S seconds (10 by default; issue 11's
    closing note gives a 600 s run); the reference reads the whole stream afterwards, undisturbed."""
    outage_s, port = float(os.environ.get("WENU_TEST_OUTAGE_S", "10")), free_port()
    keyring = write_keyring(tmp_path / "keys.json", KEYS)
    create_stream(unique_name, 4)
    producer = KinesisProducer(unique_name)
    sim = SimulationConfig(
        devices=24, interval_s=1.0, duration_s=60, seed=4, aggregate=10, faults=parse_faults(FAULTS),
        shard_ranges=producer.open_shard_ranges(),
    )  # fmt: skip
    records = list(generate(sim, KEYS))
    third = len(records) // 3
    put_all(records[:third], producer.put, Pacer("none"))
    catalog = fleet_catalog(sim)
    env = run_config(unique_name, f"{unique_name}-o", keyring, WENU_METRICS_PORT=port)
    outage = prepare(env, catalog)  # provisioned straight; the worker's DynamoDB goes through the proxy
    host, dynamo_port = os.environ["AWS_ENDPOINT_URL_DYNAMODB"].removeprefix("http://").split(":")
    proxy = FaultProxy(host, int(dynamo_port))
    saved, os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = os.environ["AWS_ENDPOINT_URL_DYNAMODB"], proxy.url
    stop, seen = asyncio.Event(), []
    worker = asyncio.create_task(consume(outage, stop=stop))
    try:
        await eventually(
            lambda: asyncio.to_thread(lambda: len(last_checkpoints(outage.lease_table, digits=True)) == 4)
        )
        proxy.cut()
        loop = asyncio.get_running_loop()
        ends, chunks = loop.time() + outage_s, [records[third:][i::4] for i in range(4)]
        for chunk in chunks:  # the rest of the traffic arrives during the outage
            await asyncio.to_thread(put_all, chunk, producer.put, Pacer("none"))
        while loop.time() < ends:
            seen.append((await asyncio.to_thread(readyz, port))[0])
            await asyncio.sleep(0.5)
        assert 503 in seen and 200 not in seen[seen.index(503) :]  # not ready from its first failed write on
        assert not worker.done()  # nothing gave up
        proxy.restore()
        tails = tail_sequences(unique_name)
        await eventually(
            lambda: asyncio.to_thread(lambda: last_checkpoints(outage.lease_table) == tails), 120
        )
        assert (await asyncio.to_thread(readyz, port))[0] == 200
    finally:
        stop.set()
        code = await asyncio.wait_for(worker, timeout=60)
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = saved
        proxy.close()
    assert code == 0
    reference = prepare(
        run_config(unique_name, f"{unique_name}-r", keyring, WENU_KINESIS_IDLE_EXIT_S=2), catalog
    )
    assert await consume(reference) == 0
    assert letters_of(outage) == letters_of(reference)
    assert stats_table(outage) == stats_table(reference)
    assert staged_rows(outage) == staged_rows(reference)
