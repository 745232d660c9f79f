"""Prometheus metrics. The web process exposes /metrics; a worker serves its own on --metrics-port.

Everything here is a counter or gauge kept in memory and moved where the work happens, so a scrape reads
memory (plus one LLEN for the queue depth and one directory listing for the spool), never the ledger: a
GROUP BY over operational_events on every scrape grew with the table. Counters restart at zero with the
process; Prometheus' rate() and increase() handle that.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("sidecar_http_requests_total", "HTTP requests by route and status", ["route", "status"])
ACK_SECONDS = Histogram(
    "sidecar_webhook_ack_seconds",
    "Time from request to acknowledgement for webhooks",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
# Web side: what the intake did with each verified delivery. outcome: queued (stored, job queued), ignored
# (stored, no handler), duplicate (dedupe key seen before), spooled (Postgres unavailable: kept in SPOOL_DIR),
# lost (not even the spool could keep it: answered 500 so the sender retries).
EVENTS_STORED = Counter(
    "sidecar_events_stored_total", "Verified deliveries by source and what the intake did", ["source", "outcome"]
)
# Spool records by outcome: spooled, stored (drained into the ledger), duplicate (the ledger had it), quarantined.
SPOOL_RECORDS = Counter("sidecar_spool_records_total", "Spool records written and drained, by outcome", ["outcome"])
SPOOL_PENDING = Gauge("sidecar_spool_pending", "Records waiting in this process's spool (read at scrape time)")
REDACTED = Counter("sidecar_payloads_redacted_total", "Event payloads replaced by a stub (PAYLOAD_RETENTION_DAYS)")
QUEUE_DEPTH = Gauge("sidecar_queue_depth", "Jobs waiting in the RQ queue")
# Worker side: every finished run of a job, by outcome (done, ignored, failed, ...); its _count is the counter
# of finished events.
JOB_SECONDS = Histogram(
    "sidecar_job_seconds",
    "Job duration by event and outcome",
    ["source", "event_type", "outcome"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
JOB_FAILURES = Counter("sidecar_job_failures_total", "Failed job runs", ["source", "event_type"])
