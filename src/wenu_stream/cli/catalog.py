"""``wenu-stream catalog import FILE`` and ``wenu-stream catalog export``.

``import`` validates the whole document first (every problem on stderr, one
per line, exit 2, nothing written), then submits it as a change set (one
``replace`` operation against the current version, the same path as the API's
apply) and prints a JSON summary on stdout; the new version records the
author (``cli:<user>``) and ``--reason``. ``export`` writes the active catalog
to stdout as a document that re-imports to no change.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import IO, Any

import msgspec

from wenu_stream.catalog.changes import ChangeSet, Replace
from wenu_stream.catalog.document import CatalogDocument, decode, encode
from wenu_stream.catalog.store import (
    URL_FIELD,
    URL_FIX,
    CatalogStore,
    CatalogUnavailable,
    ImportSummary,
    StaleVersion,
    parse_url,
)
from wenu_stream.catalog.workspace import submit
from wenu_stream.cli.output import emit_one
from wenu_stream.config import load_config
from wenu_stream.errors import ConfigError


def register(subparsers: Any) -> None:
    """Add ``catalog import`` and ``catalog export``."""
    catalog = subparsers.add_parser(
        "catalog", help="import or export the catalog (companies, devices, rules)"
    )
    actions = catalog.add_subparsers(dest="catalog_command", required=True)
    load = actions.add_parser(
        "import", help="load a catalog JSON document (idempotent; retires what it omits)"
    )
    load.add_argument("file", metavar="FILE", help="the catalog document, or - for stdin")
    load.add_argument(
        "--reason", default=None, help="why (kept in the version history; default: the file name)"
    )
    export = actions.add_parser("export", help="write the active catalog as a JSON document to stdout")
    for parser in (load, export):
        parser.add_argument(
            "--catalog",
            metavar="URL",
            default=None,
            help="sqlite:///PATH or postgresql://... [env: WENU_CATALOG_URL]",
        )
    load.set_defaults(handler=run_import, default_output="json")
    export.set_defaults(handler=run_export, default_output="json")


def run_import(args: argparse.Namespace, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
    """Validate FILE, then import it; return 0, or 2 for a bad URL or an invalid document."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    url = _url(args)
    data = _read(args.file)
    validated = decode(data)
    for warning in validated.warnings:
        print(f"warning: {warning}", file=stderr)
    if validated.document is None:
        for problem in validated.problems:
            print(problem, file=stderr)
        print(f"catalog import: {len(validated.problems)} problems; nothing was imported", file=stderr)
        return 2
    with _open(url) as store:
        summary = import_as_change_set(
            store,
            validated.document,
            author=f"cli:{_user()}",
            reason=getattr(args, "reason", None) or f"catalog import {args.file}",
        )
    emit_one(msgspec.to_builtins(summary), getattr(args, "output", "json"), out=stdout)
    return 0


def import_as_change_set(
    store: CatalogStore, document: CatalogDocument, *, author: str, reason: str
) -> ImportSummary:
    """Make the catalog equal to ``document`` through a change set against the current version.

    Another writer may apply between reading the version and applying: the
    import is "make it equal to this", so it is planned again on the new version.
    """
    for _ in range(5):
        change = ChangeSet(
            base_version=store.version(), reason=reason, operations=[Replace(msgspec.to_builtins(document))]
        )
        try:
            return submit(store, change, author=author)
        except StaleVersion:
            continue
    raise StaleVersion(change.base_version, store.version())


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def run_export(args: argparse.Namespace, stdout: IO[str] | None = None) -> int:
    """Write the active catalog to stdout."""
    with _open(_url(args)) as store:
        document = store.export_document()
    if getattr(args, "output", "json") == "jsonl":
        (stdout or sys.stdout).write(msgspec.json.encode(document).decode() + "\n")
    else:  # a document: JSON whatever -o says (table has no sense for it), ready to import again
        (stdout or sys.stdout).write(encode(document).decode())
    return 0


def _url(args: argparse.Namespace) -> str:
    url = load_config(overrides={"catalog.url": args.catalog}).catalog.url
    parse_url(url)  # a bad URL fails here, before the file is read or anything is written
    return url


def _read(file: str) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(file).read_bytes()
    except OSError as exc:
        raise ConfigError(
            "FILE", f"cannot read {file!r}: {exc.strerror}", "pass a readable catalog JSON file"
        ) from None


def _open(url: str) -> CatalogStore:
    try:
        return CatalogStore(url)
    except CatalogUnavailable as exc:
        raise ConfigError(
            URL_FIELD, str(exc), f"check the URL and that the database is up; {URL_FIX}"
        ) from None
