"""The batch stage drops a KPL aggregate that holds a record of another shard, as the KCL's deaggregation does."""

from __future__ import annotations

import msgspec

from tests.support.records import KEYS, aggregated, envelope, message, record
from wenu_stream.ingest.batch import process_batch
from wenu_stream.ingest.dedup import Dedup
from wenu_stream.model import HashRange, KinesisRecord, Position, hash_key
from wenu_stream.records.crypto import KeyRing

LOWER = HashRange(0, 2**127 - 1)
DEVICES = [f"EM-{i:06d}" for i in range(40)]
LOW = [d for d in DEVICES if LOWER.holds(d)][:3]
HIGH = [d for d in DEVICES if not LOWER.holds(d)][:2]


def test_an_aggregate_with_a_record_outside_the_shard_is_dead_lettered_whole_as_misrouted() -> None:
    assert all(hash_key(d) >= 2**127 for d in HIGH)
    records = [
        aggregated(1, [message(d, 1) for d in LOW]),  # all of this shard: kept
        aggregated(2, [message(LOW[0], 2), message(HIGH[0], 1), message(HIGH[1], 1)]),  # misrouted
        record(3, envelope(message(HIGH[0], 2)), HIGH[0]),  # a plain record is never misrouted
    ]
    outcome = process_batch(records, KeyRing.from_keys(KEYS), Dedup(), hash_range=LOWER)
    assert [(a.message.device, a.message.seq) for a in outcome.accepted] == [
        *((d, 1) for d in LOW),
        (HIGH[0], 2),
    ]
    assert (outcome.misrouted, outcome.duplicates) == (3, 0)
    assert [(d.position, d.reason, d.partition_key) for d in outcome.dead_letters] == [
        (Position(2, 0), "misrouted", LOW[0]),
        (Position(2, 1), "misrouted", HIGH[0]),
        (Position(2, 2), "misrouted", HIGH[1]),
    ]
    redriven = process_batch(
        [record(9 + i, d.raw, "redrive:" + d.partition_key) for i, d in enumerate(outcome.dead_letters)],
        KeyRing.from_keys(KEYS),
        Dedup(),
    )  # each user record alone, as dlq redrive puts it back
    assert [(a.message.device, a.message.seq) for a in redriven.accepted] == [
        (LOW[0], 2),
        (HIGH[0], 1),
        (HIGH[1], 1),
    ]
    unchecked = process_batch(records, KeyRing.from_keys(KEYS), Dedup())
    assert (len(unchecked.accepted), unchecked.misrouted) == (7, 0)


def test_the_user_records_of_a_misrouted_aggregate_the_kcl_daemon_handed_over_are_dead_lettered_together() -> (
    None
):
    def sub(seq: int, index: int, device: str, n: int) -> KinesisRecord:
        return msgspec.structs.replace(
            record(seq, envelope(message(device, n)), device), sub_sequence_number=index
        )

    records = [
        sub(1, 0, LOW[0], 1),
        sub(1, 1, LOW[1], 1),  # an aggregate of this shard
        sub(2, 0, LOW[2], 1),
        sub(2, 1, HIGH[0], 1),  # an aggregate holding another shard's record
        record(3, envelope(message(HIGH[1], 1)), HIGH[1]),  # alone: maybe put with an explicit hash key
    ]
    outcome = process_batch(records, KeyRing.from_keys(KEYS), Dedup(), hash_range=LOWER)
    assert [a.message.device for a in outcome.accepted] == [LOW[0], LOW[1], HIGH[1]]
    assert outcome.misrouted == 2
    assert [(d.position, d.reason) for d in outcome.dead_letters] == [
        (Position(2, 0), "misrouted"),
        (Position(2, 1), "misrouted"),
    ]
