"""The specs ship under docs/ and say what the code does: every reason code, every rule type, every reference."""

from __future__ import annotations

import re
from pathlib import Path

from wenu_stream.catalog.document import RULE_TYPES
from wenu_stream.ingest.batch import ParkedReason
from wenu_stream.records.rejections import Reason

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def test_every_docs_reference_in_the_code_exists() -> None:
    cited = set()
    for path in [
        *ROOT.glob("src/**/*.py"),
        *ROOT.glob("tests/**/*.py"),
        *ROOT.glob("deploy/**/*.py"),
        ROOT / "README.md",
    ]:
        cited |= set(re.findall(r"docs/[\w./-]+\.(?:md|png)", path.read_text(encoding="utf-8")))
    assert {"docs/wire-format.md", "docs/catalog.md"} <= cited
    assert [c for c in sorted(cited) if not (ROOT / c).exists()] == []
    assert not any(re.search(r"(?<!docs/)\bspec/(wire-format|catalog)\.md", p.read_text(encoding="utf-8"))
                   for p in ROOT.glob("src/**/*.py"))  # fmt: skip


def test_wire_format_lists_every_reason_code_in_order() -> None:
    text = (DOCS / "wire-format.md").read_text()
    codes = [*(r.value for r in Reason), *(r.value for r in ParkedReason)]
    assert [m for m in re.findall(r"^\| `(\w+)`", text, flags=re.M) if m in codes] == codes


def test_catalog_describes_every_rule_type() -> None:
    text = (DOCS / "catalog.md").read_text()
    for rule_type in RULE_TYPES:
        assert f"| `{rule_type}` |" in text and f'"type": "{rule_type}"' in text


def test_stats_and_alarms_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in ("wire-format.md", "catalog.md", "stats-and-alarms.md"):
        assert (DOCS / name).is_file() and f"docs/{name}" in readme
