"""Benchmark: the decode path per record against its floor (AES-GCM decrypt + msgspec decode).

Run: ``.venv/bin/python bench/decode.py [--records 20000] [--rounds 7]``

Builds realistic records with ``wenu_stream.records.encoding`` (2-4 readings,
half JSON, half MessagePack, a quarter of the user records inside KPL aggregates
of 4), then times, best of several rounds (alternating floor and decode), in one process, batch by batch:
- floor:  ``AESGCM.decrypt`` + ``msgspec`` decode into ``StrictMessage`` of the same user records: the
  payload table of the spec as msgspec constraints, the name alphabets as ``pattern`` (what decoding
  into ``Message`` did before ``names_valid`` took the alphabets out of msgspec), so the floor does
  all the validation the spec requires;
- decode: ``decode_record`` over the Kinesis records (deaggregate + header + decrypt + decode + validate).
Prints one line per measure, per user record, and the ratio decode / floor (issue target: <= 1.5).

Then the KPL parser decision, per user record, side by side on the same aggregates (of 4 user
records, as above, and of 100, as a busy KPL producer packs them): ``records.kpl`` (the protobuf
runtime, upb backend), the hand-written parser it replaced (``bench/kpl_hand.py``) and
aws-kinesis-agg's generated ``messages_pb2`` (the same runtime from generated code).
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Callable

import msgspec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from wenu_stream.records import kpl
from wenu_stream.records.crypto import KeyRing
from wenu_stream.records.decoding import Accepted, decode_record
from wenu_stream.records.encoding import aggregate, encode_payload, seal
from wenu_stream.records.envelope import NONCE_SIZE
from wenu_stream.records.payload import JSON, MSGPACK, Message, Reading, StrictMessage

CHANNELS = ("active_power_w", "energy_kwh", "voltage_v", "current_a")
KEYS = {"fleet-a": os.urandom(32), "fleet-b": os.urandom(32)}


def build(
    count: int, rng: random.Random
) -> tuple[list[tuple[bytes, str]], list[tuple[str, int, bytes, bytes, bytes]]]:
    """Return Kinesis records ``(data, partition key)`` and, per user record, what the floor needs."""
    users: list[tuple[str, bytes, int, str, bytes, bytes, bytes]] = []
    for index in range(count):
        device = f"EM-{rng.randrange(100_000):06d}"
        sent = 1_764_300_000_000 + index * 1000
        readings = tuple(
            Reading(ch, sent - 500, round(rng.uniform(0, 50_000), 3)) for ch in CHANNELS[: rng.randint(2, 4)]
        )
        message = Message(device=device, seq=index, sent_at=sent, readings=readings)
        codec = JSON if index % 2 else MSGPACK
        key_id = "fleet-a" if index % 3 else "fleet-b"
        nonce = os.urandom(NONCE_SIZE)
        envelope = seal(
            encode_payload(message, codec), key_id=key_id, key=KEYS[key_id], codec=codec, nonce=nonce
        )
        header = envelope[: 3 + len(key_id)]
        users.append((device, envelope, codec, key_id, header, nonce, envelope[len(header) + NONCE_SIZE :]))
    records: list[tuple[bytes, str]] = []
    pending: list[tuple[str, bytes]] = []
    for index, (device, envelope, *_) in enumerate(users):
        if index % 4 == 0:  # a quarter of the user records travel in KPL aggregates of 4
            pending.append((device, envelope))
            if len(pending) == 4:
                records.append((aggregate(pending), pending[0][0]))
                pending = []
        else:
            records.append((envelope, device))
    if pending:
        records.append((aggregate(pending), pending[0][0]))
    floor = [(key_id, codec, header, nonce, sealed) for _, _, codec, key_id, header, nonce, sealed in users]
    return records, floor


def best_of(
    fns: dict[str, Callable[[], int]], rounds: int, clock: Callable[[], float]
) -> dict[str, tuple[float, int]]:
    """Best time of ``rounds`` runs of each function and the count it returned.

    The rounds alternate between the functions, so that a burst of load from other processes
    on the machine falls on both sides rather than on one.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    counts = dict.fromkeys(fns, 0)
    for _ in range(rounds):
        for name, fn in fns.items():
            start = clock()
            counts[name] = fn()
            times[name].append(clock() - start)
    return {name: (min(times[name]), counts[name]) for name in fns}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, default=500, help="Kinesis records per batch (GetRecords)")
    args = parser.parse_args()
    records, floor_inputs = build(args.records, random.Random(7))
    ring = KeyRing.from_keys(KEYS)
    ciphers = {key_id: AESGCM(key) for key_id, key in KEYS.items()}
    decoders = {
        JSON: msgspec.json.Decoder(StrictMessage).decode,
        MSGPACK: msgspec.msgpack.Decoder(StrictMessage).decode,
    }

    floor_batches = [floor_inputs[i : i + args.batch] for i in range(0, len(floor_inputs), args.batch)]
    record_batches = [records[i : i + args.batch] for i in range(0, len(records), args.batch)]

    # Results are kept per batch and then dropped, as a consumer does with a GetRecords batch.
    def run_floor() -> int:
        count = 0
        for batch in floor_batches:
            out = [
                decoders[codec](ciphers[key_id].decrypt(nonce, sealed, header))
                for key_id, codec, header, nonce, sealed in batch
            ]
            count += len(out)
        return count

    def run_decode() -> int:
        count = 0
        for batch in record_batches:
            out: list[object] = []
            for data, partition_key in batch:
                out += decode_record(data, partition_key, ring)
            count += sum(type(r) is Accepted for r in out)  # every benchmark record must be accepted
        return count

    users = len(floor_inputs)
    print(
        f"records: {len(records)} Kinesis records, {users} user records, batches of {args.batch},"
        f" best of {args.rounds} rounds"
    )
    for clock_name, clock in (("perf_counter", time.perf_counter), ("process_time", time.process_time)):
        timed = best_of({"floor": run_floor, "decode": run_decode}, args.rounds, clock)
        (floor_s, n_floor), (decode_s, n_decode) = timed["floor"], timed["decode"]
        assert n_floor == n_decode == users
        print(
            f"floor  ({clock_name}): {floor_s * 1e6 / users:7.3f} us/record  ({users / floor_s:,.0f} records/s)"
        )
        print(
            f"decode ({clock_name}): {decode_s * 1e6 / users:7.3f} us/record  ({users / decode_s:,.0f} records/s)"
        )
        print(f"ratio  ({clock_name}): {decode_s / floor_s:.2f} (target <= 1.5)")
    kpl_side_by_side(args.rounds, time.process_time)


def kpl_side_by_side(rounds: int, clock: Callable[[], float]) -> None:
    """Per user record: records.kpl against the hand-written parser and aws-kinesis-agg's classes."""
    import aws_kinesis_agg.deaggregator  # noqa: F401 - puts its folder on sys.path so messages_pb2 imports
    import kpl_hand
    from aws_kinesis_agg import messages_pb2

    def generated(data: bytes, partition_key: str) -> list[tuple[str, bytes]]:
        aggregated = messages_pb2.AggregatedRecord()
        aggregated.ParseFromString(data[len(kpl.MAGIC) : -kpl.DIGEST_SIZE])  # checksum: see below
        keys = aggregated.partition_key_table
        return [(keys[r.partition_key_index], r.data) for r in aggregated.records]

    rng = random.Random(11)
    for per_aggregate in (4, 100):
        aggregates = [
            aggregate([(f"EM-{rng.randrange(100_000):06d}", os.urandom(rng.randint(90, 140)))
                       for _ in range(per_aggregate)])
            for _ in range(20_000 // per_aggregate)
        ]  # fmt: skip
        for data in aggregates[:50]:
            assert kpl.deaggregate(data, "p") == kpl_hand.deaggregate(data, "p") == generated(data, "p")
        users = per_aggregate * len(aggregates)

        def run(
            parse: Callable[[bytes, str], list[tuple[str, bytes]]], batch: list[bytes] = aggregates
        ) -> int:
            return sum(len(parse(data, "p")) for data in batch)

        timed = best_of(
            {
                "records.kpl": lambda: run(kpl.deaggregate),
                "hand-written": lambda: run(kpl_hand.deaggregate),
                "messages_pb2": lambda: run(lambda d, p: (kpl.is_aggregate(d), generated(d, p))[1]),
            },
            rounds,
            clock,
        )
        for name, (seconds, count) in timed.items():
            assert count == users
            print(
                f"kpl {name:<13} (aggregates of {per_aggregate:>3}): {seconds * 1e6 / users:6.3f} us/user record"
            )
        print(
            f"kpl ratio hand-written / records.kpl (aggregates of {per_aggregate}):"
            f" {timed['hand-written'][0] / timed['records.kpl'][0]:.2f}"
        )


if __name__ == "__main__":
    main()
