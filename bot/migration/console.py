"""What `sidecar import` and `sidecar validate` print: a progress bar while importing, then tables."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from bot.knowledge import Embedder, KnowledgeStoreBusy, open_store
from bot.migration.feed import FeedReport, reindex_pending
from bot.migration.importer import OUTCOMES, ImportReport, import_path
from bot.migration.mapping import load_mapping
from bot.migration.sources import Format
from bot.migration.validate import Validation, validate
from config.settings import Settings

MAX_DEFECTS_SHOWN = 200  # the JSON report has them all
PIPE_WIDTH = 200  # columns when printing to a file or a pipe, where rich would assume 80


def _console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=PIPE_WIDTH)


def run_import(
    dsn: str,
    fmt: Format,
    path: Path,
    *,
    mapping_file: Path | None,
    restart: bool,
    batch_size: int,
    console: Console | None = None,
) -> int:
    """Import PATH and print what changed; 0 when it ran (defects are `sidecar validate`'s business)."""
    console = console or _console()
    mapping = load_mapping(mapping_file)
    with _progress_bar() as progress:
        report = import_path(dsn, fmt, path, mapping, batch_size=batch_size, restart=restart, progress=progress)
    console.print(render_import(report))
    for file in report.files:
        for collection, n in sorted(file.collections_skipped.items()):
            console.print(
                f"not imported: {n} record(s) of collection {collection!r} ({file.source}): not in the mapping"
            )
    if report.changes == 0:
        console.print("nothing changed: every record was already imported")
    else:
        console.print(
            f"{report.changes} change(s); {report.new_errors} new error(s) in import_errors"
            + (f"; {report.linked} reservation(s) linked to their listing" if report.linked else "")
        )
    return 0


@contextmanager
def _progress_bar() -> Iterator[Callable[[int, int], Callable[[int], None]]]:
    """A rich progress bar on a terminal, silent in logs, pipes and tests."""
    err = Console(stderr=True)
    with Progress(
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not err.is_terminal,
    ) as bar:

        def start(done: int, total: int) -> Callable[[int], None]:
            task = bar.add_task("import", total=total, completed=done)
            return lambda n: bar.advance(task, n)

        yield start


def render_import(report: ImportReport) -> Table:
    table = Table(title="import")
    table.add_column("kind")
    for outcome in OUTCOMES:
        table.add_column(outcome, justify="right")
    for kind, counts in sorted(report.outcomes.items()):
        table.add_row(kind, *(str(counts[o]) for o in OUTCOMES))
    for file in report.files:
        if file.status != "imported":
            table.caption = (table.caption + "; " if table.caption else "") + f"{file.source}: {file.status}"
    return table


def run_reindex(settings: Settings, console: Console | None = None) -> int:
    """Drain the knowledge change feed here, when no worker holds the embedded store (else it is the
    worker's job, on its sweeps)."""
    console = console or _console()
    try:
        store = open_store(settings)
    except KnowledgeStoreBusy:
        console.print(
            "the embedded knowledge store is open in a running worker: it re-indexes the changed "
            "listings on its next sweeps"
        )
        return 0
    total = FeedReport()
    try:
        embedder = Embedder.from_settings(settings)
        while True:
            report = reindex_pending(settings.database_dsn, store, embedder, limit=200)
            total.reindexed, total.removed = total.reindexed + report.reindexed, total.removed + report.removed
            total.chunks_added += report.chunks_added
            total.chunks_deleted += report.chunks_deleted
            total.failed = report.failed
            if report.done == 0:
                break
    finally:
        store.close()
    console.print(
        f"knowledge: {total.reindexed} listing(s) re-indexed ({total.chunks_added} chunks embedded, "
        f"{total.chunks_deleted} deleted), {total.removed} removed"
        + (f"; {total.failed} failed, left in the feed (see the log)" if total.failed else "")
    )
    return 1 if total.failed else 0


def run_validate(dsn: str, json_out: Path | None, console: Console | None = None) -> int:
    """Print the validation tables, write the JSON report; 1 when anything is wrong."""
    console = console or _console()
    with psycopg.connect(dsn) as conn:
        result = validate(conn)
    if json_out is not None:
        text = json.dumps(result.as_json(), indent=2)
        if str(json_out) == "-":
            sys.stdout.write(text + "\n")
        else:
            json_out.write_text(text + "\n", encoding="utf-8")
    console.print(render_counts(result))
    console.print(render_defects(result))
    console.print("valid: no defects" if result.ok else f"{len(result.defects)} defect(s)")
    return 0 if result.ok else 1


def render_counts(result: Validation) -> Table:
    table = Table(title="counts: source against target")
    for name in ("kind", "source records", "duplicates", "rejected", "source ids", "in target", "table rows", "ok"):
        table.add_column(name, justify="left" if name == "kind" else "right")
    for c in result.counts:
        table.add_row(
            c.kind,
            str(c.source_records),
            str(c.duplicates),
            str(c.rejected),
            str(c.source_keys),
            str(c.in_target),
            str(c.target_rows),
            "yes" if c.ok else "NO",
        )
    return table


def render_defects(result: Validation) -> Table:
    table = Table(title=f"defects ({len(result.defects)})")
    for name in ("check", "rule", "kind", "id"):
        table.add_column(name, no_wrap=True)
    table.add_column("detail")
    for d in result.defects[:MAX_DEFECTS_SHOWN]:
        table.add_row(d.check, d.rule, d.kind, d.id, d.detail)
    if len(result.defects) > MAX_DEFECTS_SHOWN:
        table.caption = f"{len(result.defects) - MAX_DEFECTS_SHOWN} more in the JSON report (--json OUT)"
    return table
