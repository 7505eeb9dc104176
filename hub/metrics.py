"""Baton's Prometheus metrics: the counters and histograms every process updates as work happens.

Gauges that describe the database (backlog, flags, outbox) are computed at scrape time by the
collectors in `hub.collectors`, so they are right whichever process did the work. This module imports
no app, so the apps can update these metrics without reaching up.

With `PROMETHEUS_MULTIPROC_DIR` set (gunicorn with several workers, Celery's prefork pool), every
process writes its values to files there and a scrape sums them.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Sequence

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    multiprocess,
)
from prometheus_client.registry import Collector

disable_created_metrics()  # the *_created series only double what a scrape stores

# Seconds: from a few milliseconds (a cached read) to minutes (a worker far behind).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
LAG_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600)
TASK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

HTTP_REQUESTS = Counter(
    "baton_http_requests",
    "HTTP requests answered, by route name (never the raw path), method and status code.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "baton_http_request_duration_seconds",
    "Time to answer an HTTP request, by route name and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
MESSAGES_ACCEPTED = Counter(
    "baton_partner_messages_accepted",
    "Partner messages stored for processing, by adapter and channel.",
    ["adapter", "channel"],
)
MESSAGES_REJECTED = Counter(
    "baton_partner_messages_rejected",
    "Partner messages refused at the door (kept for inspection), by adapter and channel.",
    ["adapter", "channel"],
)
MESSAGES_FINISHED = Counter(
    "baton_partner_messages_finished",
    "Partner messages the worker finished, by outcome (processed, unmatched, failed) and channel.",
    ["outcome", "channel"],
)
ACCEPTANCE_LAG = Histogram(
    "baton_acceptance_to_timeline_lag_seconds",
    "From storing a partner message to the worker finishing it (processed_at - received_at).",
    ["outcome"],
    buckets=LAG_BUCKETS,
)
TASK_DURATION = Histogram(
    "baton_celery_task_duration_seconds",
    "Celery task run time, by task name and final state.",
    ["task", "state"],
    buckets=TASK_BUCKETS,
)
TASK_RETRIES = Counter("baton_celery_task_retries", "Celery task retries, by task name.", ["task"])
TASK_FAILURES = Counter("baton_celery_task_failures", "Celery tasks that raised, by task name.", ["task"])


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or ""


class _ProcessMetrics(Collector):
    """This process's own metrics (the default registry), for a registry built per scrape."""

    def collect(self):  # type: ignore[no-untyped-def]
        return REGISTRY.collect()


def process_registry() -> CollectorRegistry:
    """The metrics of every process of this service (of this process alone without multiprocess mode)."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ProcessMetrics())
    return registry


def scrape_allowed(*, authorization: str, remote_addr: str, token: str, networks: Sequence[str]) -> str:
    """ "allowed" for the metrics bearer token or an allow-listed address; else "no_token" or "denied"."""
    scheme, _, credentials = authorization.partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip(), token):
        return "allowed"
    if remote_addr and networks:
        try:
            address = ipaddress.ip_address(remote_addr)
        except ValueError:
            address = None
        if address is not None and any(
            address in ipaddress.ip_network(net, strict=False) for net in networks
        ):
            return "allowed"
    return "no_token" if token else "denied"
