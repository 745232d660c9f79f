"""Prometheus metrics. The web process exposes /metrics; a worker serves its own on --metrics-port."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("sidecar_http_requests_total", "HTTP requests by route and status", ["route", "status"])
ACK_SECONDS = Histogram(
    "sidecar_webhook_ack_seconds",
    "Time from request to acknowledgement for webhooks",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
EVENTS = Gauge("sidecar_events", "Stored webhook events by source and status", ["source", "status"])
QUEUE_DEPTH = Gauge("sidecar_queue_depth", "Jobs waiting in the RQ queue")
JOB_SECONDS = Histogram(
    "sidecar_job_seconds", "Job duration by event and outcome", ["source", "event_type", "outcome"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
JOB_FAILURES = Counter("sidecar_job_failures_total", "Failed job runs", ["source", "event_type"])
