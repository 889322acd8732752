"""moto's server with DynamoDB item operations made atomic, as the real service's are.

moto serves each request on its own thread and its DynamoDB backend has no
locks: two conditional writes on one item that race (two workers claiming the
same ledger entry, say) can both see their condition true and both apply.
DynamoDB evaluates a condition and applies the write atomically, so this
entry point wraps the backend's item operations in one lock, then runs moto's
own ``main``. Everything else is moto as shipped.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_LOCK = threading.RLock()
_OPERATIONS = (
    "put_item",
    "get_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "transact_write_items",
    "transact_get_items",
)


def _atomic(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)

    return locked


for _name in _OPERATIONS:
    if hasattr(DynamoDBBackend, _name):
        setattr(DynamoDBBackend, _name, _atomic(getattr(DynamoDBBackend, _name)))

if __name__ == "__main__":
    main()
