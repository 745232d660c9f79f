"""The `sidecar` command: serve, worker, db upgrade, events list/replay, and the knowledge tools."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from config.settings import ConfigError, Settings, load_settings


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"sidecar: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from bot.core import db

    settings = _settings()
    if db.create_database(settings.database_dsn):
        print("created the database")
    applied = db.upgrade(settings.database_dsn)
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from bot.core import db, logs
    from bot.service.app import create_app

    settings = _settings()
    logs.setup(settings.log_level)
    if args.migrate:
        db.create_database(settings.database_dsn)
        db.upgrade(settings.database_dsn)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_config=None, access_log=False, workers=None)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from bot.core import logs
    from bot.service.worker import run_worker

    settings = _settings()
    if args.concurrency:
        settings = settings.model_copy(update={"worker_concurrency": args.concurrency})
    logs.setup(settings.log_level)
    run_worker(settings, burst=args.burst, metrics_port=args.metrics_port)
    return 0


def cmd_events_list(args: argparse.Namespace) -> int:
    import psycopg

    from bot.core import ledger

    settings = _settings()
    status = "failed" if args.failed else args.status
    with psycopg.connect(settings.database_dsn) as conn:
        rows = ledger.list_events(conn, status=status, source=args.source, limit=args.limit)
    if not rows:
        print("no events")
        return 0
    print(f"{'id':>6}  {'source':8}  {'event':28}  {'status':10}  {'tries':>5}  received             detail")
    for r in rows:
        detail = r["last_error"] or ""
        if r["status"] == "failed":
            when = r["next_attempt_at"]
            detail = (f"retry at {when:%Y-%m-%d %H:%M:%S} " if when else "gave up: ") + detail
        print(
            f"{r['id']:>6}  {r['source']:8}  {r['event_type'][:28]:28}  {r['status']:10}  {r['attempts']:>5}  "
            f"{r['received_at']:%Y-%m-%d %H:%M:%S}  {detail[:120]}"
        )
    return 0


def cmd_events_replay(args: argparse.Namespace) -> int:
    import psycopg

    from bot.core import ledger
    from bot.service import jobs

    if args.id is None and not args.failed:
        print("sidecar: give an event ID or --failed", file=sys.stderr)
        return 2
    settings = _settings()
    with psycopg.connect(settings.database_dsn, autocommit=True) as conn:
        ids = ledger.prepare_replay(conn, event_id=args.id, all_failed=args.failed)
        if args.id is not None and not ids:
            row = conn.execute(
                "SELECT status, redacted_at IS NOT NULL FROM operational_events WHERE id = %s", (args.id,)
            ).fetchone()
            why = (
                "no such event"
                if row is None
                else "its payload was redacted (PAYLOAD_RETENTION_DAYS): nothing is left to process"
                if row[1]
                else f"it is {row[0]}, not finished or failed"
            )
            print(f"sidecar: event {args.id} cannot be replayed: {why}", file=sys.stderr)
            return 1
        queue = jobs.make_queue(settings)
        for event_id in ids:
            jobs.enqueue(queue, event_id)
    print(f"queued {len(ids)} event(s) again" + (": " + ", ".join(map(str, ids)) if ids else ""))
    return 0 if ids or args.failed else 1


def cmd_events_redact(args: argparse.Namespace) -> int:
    import psycopg

    from bot.core import ledger

    settings = _settings()
    days = settings.payload_retention_days if args.days is None else args.days
    if days <= 0:
        print("payload retention is off (PAYLOAD_RETENTION_DAYS=0): nothing redacted")
        return 0
    with psycopg.connect(settings.database_dsn, autocommit=True) as conn:
        count = ledger.redact_payloads(conn, days)
    print(f"redacted the payloads of {count} finished event(s) older than {days} days")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.core import db
    from bot.knowledge import Embedder, KnowledgeStoreBusy, ingest, open_store

    settings = _settings()
    root = Path(args.path)
    if not root.is_dir():
        print(f"sidecar: {root} is not a folder", file=sys.stderr)
        return 2
    db.create_database(settings.database_dsn)
    db.upgrade(settings.database_dsn)
    try:
        store = open_store(settings)
    except KnowledgeStoreBusy:
        if args.no_queue:
            raise
        # The embedded store belongs to a running worker: let that worker ingest the folder.
        from bot.service import jobs

        jobs.make_queue(settings).enqueue(
            "bot.service.periodic.ingest_folder", str(root.resolve()), job_timeout=jobs.JOB_TIMEOUT_S
        )
        print(
            f"the embedded knowledge store is open in a running worker: queued the ingest of {root.resolve()} "
            "for it (see the worker's log for the counts)"
        )
        return 0
    try:
        report = ingest(
            root,
            store=store,
            embedder=Embedder.from_settings(settings),
            dsn=settings.database_dsn,
            progress=sys.stderr.isatty(),
        )
    finally:
        store.close()
    print(f"{report.files} files: {report.added} chunks added, {report.unchanged} unchanged, {report.deleted} deleted")
    for error in report.errors:
        print(f"  skipped: {error}", file=sys.stderr)
    return 1 if report.errors else 0


def cmd_ask(args: argparse.Namespace) -> int:
    from bot.knowledge import KnowledgeStoreBusy
    from bot.service import jobs
    from bot.service.ask import ask, render, render_json

    settings = _settings()
    options = {"access": args.access, "contact_id": args.contact, "identity": args.identity}
    try:
        result = ask(settings, args.question, args.property, **options)
    except KnowledgeStoreBusy:
        # The embedded store belongs to a running worker: let that worker answer, and wait for it.
        job = jobs.make_queue(settings).enqueue(
            "bot.service.periodic.ask_question", args.question, args.property, options, job_timeout=120, result_ttl=300
        )
        answer = _worker_result(job, args.wait, "answer")
        if answer is None:
            return 1
        print(json.dumps(answer["json"], ensure_ascii=False, indent=2) if args.json else answer["text"])
        return 0
    print(render_json(result) if args.json else render(result))
    return 0


def _worker_result(job: Any, wait_s: float, what: str) -> dict[str, Any] | None:
    """Wait for a job a running worker does for the CLI (it holds the embedded store); None after saying why."""
    import time

    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        status = job.get_status(refresh=True)
        if status == "finished":
            result: dict[str, Any] = job.return_value() or {}
            return result
        if status in ("failed", "stopped", "canceled"):
            print(f"sidecar: the worker could not {what} ({status}); see its log", file=sys.stderr)
            return None
        time.sleep(0.2)
    print(f"sidecar: no {what} from the worker within {wait_s:g} s; is `sidecar worker` running?", file=sys.stderr)
    return None


def cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.knowledge.evaluation import EvalError
    from bot.service.evaluate import gate, run

    try:
        report = run(
            Path(args.questions), knowledge_path=Path(args.knowledge) if args.knowledge else None, settings=_settings()
        )
    except (EvalError, OSError) as exc:
        print(f"sidecar: {exc}", file=sys.stderr)
        return 2
    print(report.to_text())
    if args.json:
        Path(args.json).write_text(report.to_json(), encoding="utf-8")
    problems = gate(report, min_same=args.min_same, min_cross=args.min_cross)
    for problem in problems:
        print(f"sidecar eval: {problem}", file=sys.stderr)
    return 1 if problems else 0


def cmd_purge(args: argparse.Namespace) -> int:
    import psycopg

    from bot.agent.voice_store import purge_voice_data

    settings = _settings()
    days = args.days or settings.voice_retention_days
    with psycopg.connect(settings.database_dsn, autocommit=True) as conn:
        report = purge_voice_data(conn, days)
    print(
        f"purged voice data older than {days} days: {report.transcripts} transcripts, {report.notes} notes, "
        f"{report.questions} questions, {report.payloads} event payloads"
    )
    return 0


def cmd_learned(args: argparse.Namespace) -> int:
    import psycopg

    from bot.core import learned
    from bot.service import jobs

    settings = _settings()
    with psycopg.connect(settings.database_dsn, autocommit=True) as conn:
        if args.action == "list":
            for pair in learned.list_all(conn, include_removed=args.all):
                scope = "shared" if pair.shared else (pair.property_code or "-")
                print(f"#{pair.id}  {pair.status:<8} {scope:<12} {pair.created_at:%Y-%m-%d}  Q: {pair.question}")
                print(f"    A: {pair.answer}")
            return 0
        if args.id is None:
            print("sidecar: learned remove needs the pair's id (see `sidecar learned list`)", file=sys.stderr)
            return 2
        if not learned.remove(conn, args.id):
            print(f"sidecar: no learned answer #{args.id} (or it was removed already)", file=sys.stderr)
            return 1
    # The worker owns the knowledge store (the embedded one admits one process): it unindexes the pair.
    jobs.make_queue(settings).enqueue("bot.service.periodic.sync_learned_answers", job_timeout=jobs.JOB_TIMEOUT_S)
    print(f"removed learned answer #{args.id}; the worker takes it out of the knowledge")
    return 0


def _since(text: str) -> timedelta:
    """'7d', '12h', '30m' -> a duration."""
    match = re.fullmatch(r"(\d+)([dhm])", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 7d, 12h or 30m")
    n, unit = int(match.group(1)), match.group(2)
    return timedelta(days=n) if unit == "d" else timedelta(hours=n) if unit == "h" else timedelta(minutes=n)


def cmd_gaps(args: argparse.Namespace) -> int:
    import asyncio
    from datetime import UTC, datetime

    from psycopg_pool import AsyncConnectionPool

    from bot.agent.gaps import gap_signals, group, render
    from bot.knowledge import Embedder

    settings = _settings()
    since = datetime.now(UTC) - args.since

    async def run() -> str:
        async with AsyncConnectionPool(settings.database_dsn, min_size=1, max_size=2, open=False) as pool:
            asked = await gap_signals(pool, since)
        if not asked:
            return render([], since=since)
        embedder = Embedder.from_settings(settings)
        return render(group(asked, lambda q: embedder.embed_query(q).dense), since=since, limit=args.limit)

    print(asyncio.run(run()))
    return 0


def cmd_replies_list(args: argparse.Namespace) -> int:
    import asyncio
    from datetime import UTC, datetime

    from psycopg_pool import AsyncConnectionPool

    from bot.agent.shadow import render
    from bot.core.shadow_replies import answers

    settings = _settings()
    since = datetime.now(UTC) - args.since

    async def run() -> list[Any]:
        async with AsyncConnectionPool(settings.database_dsn, min_size=1, max_size=2, open=False) as pool:
            return await answers(pool, since, inbox_id=args.inbox, limit=args.limit)

    found = asyncio.run(run())
    print(json.dumps([a.as_json() for a in found], ensure_ascii=False, indent=2) if args.json else render(found))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime
    from pathlib import Path

    from bot.knowledge import KnowledgeStoreBusy
    from bot.service import jobs
    from bot.service.replay import run

    settings = _settings()
    since = datetime.now(UTC) - args.since
    try:
        report = run(settings, source=args.source, since=since, inbox_id=args.inbox, limit=args.limit)
        text, data = report.to_text(), report.to_json()
    except KnowledgeStoreBusy:
        # The embedded store belongs to a running worker: that worker replays, and we wait for its report.
        job = jobs.make_queue(settings).enqueue(
            "bot.service.periodic.replay_history",
            args.source,
            since.isoformat(),
            args.inbox,
            args.limit,
            job_timeout=max(int(args.wait), 60),
            result_ttl=3600,
        )
        done = _worker_result(job, args.wait, "replay")
        if done is None:
            return 1
        text, data = done["text"], done["json"]
    print(text)
    if args.json:
        Path(args.json).write_text(data + "\n", encoding="utf-8")
    return 0


def cmd_chatwoot_setup(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from bot.service.setup import setup_command

    return asyncio.run(
        setup_command(
            _settings(),
            token=args.token,
            webhook_url=args.webhook_url,
            panel_url=args.panel_url,
            inboxes=args.inbox,
            env_file=Path(args.env_file) if args.env_file else None,
            docker=args.docker,
        )
    )


def cmd_doctor(args: argparse.Namespace) -> int:
    import asyncio

    from bot.service.doctor import doctor_command

    # doctor reads the settings itself: a bad one is its first finding, not a reason to stop
    return asyncio.run(doctor_command(as_json=args.json, timeout=args.timeout))


def cmd_access_log(args: argparse.Namespace) -> int:
    import psycopg

    from bot.agent import access_log

    settings = _settings()
    with psycopg.connect(settings.database_dsn) as conn:
        rows = access_log.entries(conn, contact_id=args.contact, booking=args.booking, limit=args.limit)
    print(access_log.render(rows))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.core import db
    from bot.migration.console import run_import, run_reindex
    from bot.migration.mapping import MappingError
    from bot.migration.sources import SourceError

    settings = _settings()
    db.create_database(settings.database_dsn)
    db.upgrade(settings.database_dsn)
    try:
        code = run_import(
            settings.database_dsn,
            args.format,
            Path(args.path),
            mapping_file=Path(args.mapping) if args.mapping else None,
            restart=args.restart,
            batch_size=args.batch_size,
        )
    except (MappingError, SourceError) as exc:
        print(f"sidecar: {exc}", file=sys.stderr)
        return 2
    return run_reindex(settings) if args.reindex else code


def cmd_validate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.migration.console import run_validate

    return run_validate(_settings().database_dsn, Path(args.json) if args.json else None)


def _add_migration_commands(sub: argparse._SubParsersAction) -> None:
    """`sidecar import mongodb|firestore PATH` and `sidecar validate` (bot.migration)."""
    imp = sub.add_parser("import", help="import the history of an old system (resumable, idempotent)")
    formats = imp.add_subparsers(dest="format", required=True)
    for name, what in (
        ("mongodb", "mongoexport JSON (lines or array, Extended JSON) and mongodump .bson files"),
        ("firestore", "Firestore REST documents: one JSON file per collection, or documents.list"),
    ):
        p = formats.add_parser(name, help=what)
        p.add_argument("path", help="a file, or a folder of export files")
        p.add_argument("--mapping", default=None, help="YAML or TOML file mapping collections and fields")
        p.add_argument("--restart", action="store_true", help="read every file from the top, ignoring checkpoints")
        p.add_argument("--batch-size", type=int, default=500)
        p.add_argument(
            "--reindex",
            action="store_true",
            help="index the changed listings' knowledge now (when no worker holds the embedded store)",
        )
        p.set_defaults(func=cmd_import)
    p = sub.add_parser("validate", help="check counts, integrity, relationships, schema and business rules")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the report as JSON (- for stdout)")
    p.set_defaults(func=cmd_validate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sidecar", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the web app (webhooks, health, metrics)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--migrate", action="store_true", help="apply database migrations first")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", help="process queued events")
    p.add_argument("--burst", action="store_true", help="process what is queued, then exit")
    p.add_argument("--metrics-port", type=int, default=None, help="serve worker metrics on this port")
    p.add_argument(
        "--concurrency", type=int, default=None, help="jobs run at once in this process (default WORKER_CONCURRENCY, 8)"
    )
    p.set_defaults(func=cmd_worker)

    db = sub.add_parser("db", help="database tools").add_subparsers(dest="db_command", required=True)
    p = db.add_parser("upgrade", help="create the database if needed and apply migrations")
    p.set_defaults(func=cmd_db_upgrade)

    ev = sub.add_parser("events", help="inspect and replay stored webhook events").add_subparsers(
        dest="events_command", required=True
    )
    p = ev.add_parser("list", help="recent events, newest first")
    p.add_argument("--failed", action="store_true", help="only failed events")
    p.add_argument("--status", choices=["received", "processing", "done", "failed", "ignored"])
    p.add_argument("--source", choices=["chatwoot", "aircall", "guesty", "internal"])
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_events_list)
    p = ev.add_parser("replay", help="process events again (one by id, or every failed one)")
    p.add_argument("id", type=int, nargs="?")
    p.add_argument("--failed", action="store_true")
    p.set_defaults(func=cmd_events_replay)
    p = ev.add_parser(
        "redact",
        help="replace payloads of done/ignored events older than PAYLOAD_RETENTION_DAYS "
        "with a stub (the web does it hourly)",
    )
    p.add_argument("--days", type=int, default=None, help="override PAYLOAD_RETENTION_DAYS (default 90)")
    p.set_defaults(func=cmd_events_redact)
    p = sub.add_parser("ingest", help="index a folder of guides, house rules and FAQs (incremental)")
    p.add_argument("path")
    p.add_argument(
        "--no-queue",
        action="store_true",
        help="fail instead of handing the ingest to the worker that holds the embedded store",
    )
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("ask", help="answer a question from the knowledge base, as the bot would")
    p.add_argument("question")
    p.add_argument("--property", default=None, help="the guest's property code (else shared knowledge only)")
    p.add_argument(
        "--access",
        action="store_true",
        help="answer as for a guest whose stay unlocks the property's access details and address",
    )
    p.add_argument(
        "--contact",
        type=int,
        default=None,
        help="answer as the bot would answer this Chatwoot contact (its booking, property, rights)",
    )
    p.add_argument(
        "--identity",
        choices=["verified", "claimed"],
        default="verified",
        help="with --contact: the writer's identity level (default verified)",
    )
    p.add_argument("--json", action="store_true", help="print the answer, decision and passages as JSON")
    p.add_argument("--wait", type=float, default=60.0, help="seconds to wait for a running worker's answer")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("eval", help="retrieval recall and answer/hand-off decisions on a questions file")
    p.add_argument("questions", help="a JSONL file (format: bot/knowledge/eval/README.md)")
    p.add_argument("--knowledge", default=None, help="the knowledge folder (default: the bundled examples)")
    p.add_argument("--json", default=None, help="also write the full report as JSON to this file")
    p.add_argument("--min-same", type=float, default=0.0, help="fail below this recall@5 in the guide's language")
    p.add_argument("--min-cross", type=float, default=0.0, help="fail below this recall@5 across languages")
    p.set_defaults(func=cmd_eval)

    acc = sub.add_parser("access", help="who was given door codes and exact addresses, and who was refused")
    acc_sub = acc.add_subparsers(dest="access_command", required=True)
    p = acc_sub.add_parser("log", help="releases and refusals of gated details, newest first")
    p.add_argument("--contact", type=int, default=None, help="only this Chatwoot contact id")
    p.add_argument("--booking", default=None, help="only this booking (confirmation code or Guesty id)")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=cmd_access_log)

    p = sub.add_parser("purge", help="forget what was heard in voice notes older than VOICE_RETENTION_DAYS")
    p.add_argument("--days", type=int, default=None, help="override VOICE_RETENTION_DAYS (default 30)")
    p.set_defaults(func=cmd_purge)

    p = sub.add_parser("learned", help="what the team taught the bot with /teach and edited /send notes")
    p.add_argument("action", choices=["list", "remove"])
    p.add_argument("id", type=int, nargs="?", help="the pair to remove")
    p.add_argument("--all", action="store_true", help="list removed pairs too")
    p.set_defaults(func=cmd_learned)

    p = sub.add_parser("gaps", help="what guests asked that the knowledge did not answer, grouped by topic")
    p.add_argument("--since", type=_since, default=timedelta(days=7), help="how far back (default 7d)")
    p.add_argument("--limit", type=int, default=20, help="how many topics to print (default 20)")
    p.set_defaults(func=cmd_gaps)

    rp = sub.add_parser("replies", help="what the bot would have said in shadow-mode inboxes").add_subparsers(
        dest="replies_command", required=True
    )
    p = rp.add_parser("list", help="shadow answers, newest first: question, answer, sources, decision, latency")
    p.add_argument("--inbox", type=int, default=None, help="one Chatwoot inbox id")
    p.add_argument("--since", type=_since, default=timedelta(days=7), help="how far back (default 7d)")
    p.add_argument("--limit", type=int, default=200, help="at most this many answers (default 200)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_replies_list)

    p = sub.add_parser(
        "replay",
        help="past resolved conversations through the bot in shadow: would it have "
        "answered, does it agree with the person who did",
    )
    p.add_argument("--since", type=_since, default=timedelta(days=90), help="how far back (default 90d)")
    p.add_argument("--inbox", type=int, default=None, help="only this Chatwoot inbox")
    p.add_argument("--limit", type=int, default=None, help="at most N conversations")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the full report as JSON")
    p.add_argument(
        "--wait",
        type=float,
        default=1800.0,
        help="while a worker holds the embedded store, it replays: wait this long for it (default 1800 s)",
    )
    p.add_argument(
        "--from",
        dest="source",
        choices=["chatwoot", "archive"],
        default="chatwoot",
        help="Chatwoot's API (user token, default) or the imported archive",
    )
    p.set_defaults(func=cmd_replay)

    cw = sub.add_parser("chatwoot", help="Chatwoot tools").add_subparsers(dest="chatwoot_command", required=True)
    p = cw.add_parser("setup", help="create or find the agent bot, inboxes, attributes, labels, filter and panel")
    p.add_argument("--token", default=None, help="an administrator's access token (default CHATWOOT_ADMIN_TOKEN)")
    p.add_argument(
        "--webhook-url",
        default=None,
        help="the bot's URL as Chatwoot reaches it (default SIDECAR_WEBHOOK_URL), "
        "e.g. http://sidecar-web:8000/webhooks/chatwoot",
    )
    p.add_argument(
        "--panel-url",
        default=None,
        help="the panel as agents' browsers reach it (default: the webhook URL's origin + /panel)",
    )
    p.add_argument(
        "--inbox",
        action="append",
        default=[],
        metavar="ID[=MODE]",
        help="an inbox for the bot, with its mode (autopilot|copilot|off); repeat for each",
    )
    p.add_argument("--env-file", default=None, help="write the sidecar's settings into this env file")
    p.add_argument("--docker", action="store_true", help="print `docker secret create` commands instead")
    p.set_defaults(func=cmd_chatwoot_setup)

    p = sub.add_parser("doctor", help="check settings, services and credentials; non-zero exit on any problem")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.add_argument("--timeout", type=float, default=8.0, help="seconds each check may take (default 8)")
    p.set_defaults(func=cmd_doctor)

    _add_migration_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
