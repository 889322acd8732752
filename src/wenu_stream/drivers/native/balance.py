"""Which leases to take: expiry by unchanged counters, readiness (parents first) and even balancing. Pure.

Like the KCL lease taker, a worker never trusts another worker's clock: a
lease owned by someone else is *expired* when its ``leaseCounter`` has not
changed for ``failover_ms`` of this worker's own monotonic time.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Collection, Iterable, Sequence

from wenu_stream.drivers.native.leases import Lease


class ExpiryTracker:
    """Remembers when each lease's counter last changed, in this worker's monotonic milliseconds."""

    def __init__(self, failover_ms: int) -> None:
        self.failover_ms = failover_ms
        self._seen: dict[str, tuple[int, float]] = {}

    def expired(self, leases: Iterable[Lease], now_ms: float) -> set[str]:
        """Observe ``leases`` and return the keys of owned leases whose counter stood still for ``failover_ms``."""
        seen: dict[str, tuple[int, float]] = {}
        expired: set[str] = set()
        for lease in leases:
            counter, since = self._seen.get(lease.lease_key, (lease.lease_counter, now_ms))
            if counter != lease.lease_counter:
                since = now_ms
            seen[lease.lease_key] = (lease.lease_counter, since)
            if lease.lease_owner is not None and now_ms - since >= self.failover_ms:
                expired.add(lease.lease_key)
        self._seen = seen
        return expired


def is_ready(lease: Lease, by_key: dict[str, Lease], shard_ids: Collection[str]) -> bool:
    """True when every parent of ``lease`` is done: its lease is at SHARD_END, it has no lease, or it left the stream."""
    for parent in lease.parent_shard_ids:
        row = by_key.get(parent)
        if row is not None and not row.ended and parent in shard_ids:
            return False
    return True


def plan_takes(
    leases: Sequence[Lease],
    *,
    me: str,
    held: Collection[str],
    expired: Collection[str],
    max_leases: int = 0,
    rng: random.Random | None = None,
) -> list[Lease]:
    """The leases this worker should try to take in this pass.

    ``leases`` are the candidates (not ended, parents done). The target is an
    even share, ``ceil(leases / live workers)`` (capped by ``max_leases``).
    Below target, take free or expired leases; if there are none, steal one
    lease, from the most loaded worker, when it holds more than the target
    (or exactly the target while we lack two or more).
    """
    rng = rng or random.Random()
    if not leases:
        return []
    live = [lease for lease in leases if lease.lease_owner is not None and lease.lease_key not in expired]
    workers = {lease.lease_owner for lease in live} | {me}
    target = math.ceil(len(leases) / len(workers))
    if max_leases:
        target = min(target, max_leases)
    need = target - len(held)
    if need <= 0:
        return []
    free = [
        lease
        for lease in leases
        if lease.lease_key not in held and (lease.lease_owner is None or lease.lease_key in expired)
    ]
    if free:
        rng.shuffle(free)
        return free[:need]
    loads = Counter(lease.lease_owner for lease in live if lease.lease_owner != me)
    if not loads:
        return []
    owner, count = max(loads.items(), key=lambda item: (item[1], item[0] or ""))
    if count > target or (count == target and need > 1):
        return [rng.choice([lease for lease in live if lease.lease_owner == owner])]
    return []
