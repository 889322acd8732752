"""GetRecords pages shrink when a worker holds many shards, so that the pages in memory stay bounded."""

from __future__ import annotations

from wenu_stream.drivers.native.consumer import MIN_PAGE, PAGE_BUDGET, page_limit


def test_page_limit_shares_the_budget_between_held_shards() -> None:
    assert page_limit(10_000, 0) == 10_000
    assert page_limit(10_000, 1) == 10_000
    assert page_limit(10_000, 2) == 10_000
    assert page_limit(10_000, 4) == PAGE_BUDGET // 4
    assert page_limit(10_000, 8) == PAGE_BUDGET // 8
    assert page_limit(10_000, 1_000) == MIN_PAGE
    assert page_limit(4, 8) == 4  # a configured max_records below the share is kept
