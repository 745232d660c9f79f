"""The `sidecar` command: serve, worker, db upgrade, events list/replay, and the knowledge tools."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

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
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_config=None,
                access_log=False, workers=None)
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
        print(f"{r['id']:>6}  {r['source']:8}  {r['event_type'][:28]:28}  {r['status']:10}  {r['attempts']:>5}  "
              f"{r['received_at']:%Y-%m-%d %H:%M:%S}  {detail[:120]}")
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
    from bot.knowledge import Embedder, KnowledgeStoreError, ingest, open_store

    settings = _settings()
    root = Path(args.path)
    if not root.is_dir():
        print(f"sidecar: {root} is not a folder", file=sys.stderr)
        return 2
    db.create_database(settings.database_dsn)
    db.upgrade(settings.database_dsn)
    try:
        store = open_store(settings)
    except KnowledgeStoreError as exc:
        if "another process" not in str(exc) or args.no_queue:
            raise
        # The embedded store belongs to a running worker: let that worker ingest the folder.
        from bot.service import jobs

        jobs.make_queue(settings).enqueue("bot.service.periodic.ingest_folder", str(root.resolve()),
                                          job_timeout=jobs.JOB_TIMEOUT_S)
        print(f"the embedded knowledge store is open in a running worker: queued the ingest of {root.resolve()} "
              "for it (see the worker's log for the counts)")
        return 0
    try:
        report = ingest(root, store=store, embedder=Embedder.from_settings(settings), dsn=settings.database_dsn,
                        progress=sys.stderr.isatty())
    finally:
        store.close()
    print(f"{report.files} files: {report.added} chunks added, {report.unchanged} unchanged, "
          f"{report.deleted} deleted")
    for error in report.errors:
        print(f"  skipped: {error}", file=sys.stderr)
    return 1 if report.errors else 0


def cmd_ask(args: argparse.Namespace) -> int:
    from bot.service.ask import ask, render

    result = ask(_settings(), args.question, args.property, access=args.access)
    print(render(result))
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    import psycopg

    from bot.agent.voice_store import purge_voice_data

    settings = _settings()
    days = args.days or settings.voice_retention_days
    with psycopg.connect(settings.database_dsn, autocommit=True) as conn:
        report = purge_voice_data(conn, days)
    print(f"purged voice data older than {days} days: {report.transcripts} transcripts, {report.notes} notes, "
          f"{report.questions} questions, {report.payloads} event payloads")
    return 0


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
    p.add_argument("--concurrency", type=int, default=None,
                   help="jobs run at once in this process (default WORKER_CONCURRENCY, 8)")
    p.set_defaults(func=cmd_worker)

    db = sub.add_parser("db", help="database tools").add_subparsers(dest="db_command", required=True)
    p = db.add_parser("upgrade", help="create the database if needed and apply migrations")
    p.set_defaults(func=cmd_db_upgrade)

    ev = sub.add_parser("events", help="inspect and replay stored webhook events").add_subparsers(
        dest="events_command", required=True)
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
    p = ev.add_parser("redact", help="replace payloads of done/ignored events older than PAYLOAD_RETENTION_DAYS "
                                     "with a stub (the web does it hourly)")
    p.add_argument("--days", type=int, default=None, help="override PAYLOAD_RETENTION_DAYS (default 90)")
    p.set_defaults(func=cmd_events_redact)
    p = sub.add_parser("ingest", help="index a folder of guides, house rules and FAQs (incremental)")
    p.add_argument("path")
    p.add_argument("--no-queue", action="store_true",
                   help="fail instead of handing the ingest to the worker that holds the embedded store")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("ask", help="answer a question from the knowledge base, as the bot would")
    p.add_argument("question")
    p.add_argument("--property", default=None, help="the guest's property code (else shared knowledge only)")
    p.add_argument("--access", action="store_true",
                   help="answer as for a guest whose stay unlocks the property's access details and address")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("purge", help="forget what was heard in voice notes older than VOICE_RETENTION_DAYS")
    p.add_argument("--days", type=int, default=None, help="override VOICE_RETENTION_DAYS (default 30)")
    p.set_defaults(func=cmd_purge)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
