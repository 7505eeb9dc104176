"""Celery signal handlers: Django's structured logging, request ids across the broker, task metrics.

Connected when `hub.celery` loads, so they apply to workers, beat and eager runs alike.
"""

from __future__ import annotations

import logging
import logging.config
import os
import time
from typing import Any

from celery import signals
from prometheus_client import start_http_server

from hub import metrics
from hub.logs import bind_request_id, current_request_id

log = logging.getLogger(__name__)
_started: dict[str, float] = {}


@signals.setup_logging.connect
def use_django_logging(**_: Any) -> None:
    """Workers log exactly like the web processes (JSON in production), not in Celery's own format."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@signals.before_task_publish.connect
def carry_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """A task enqueued while serving a request carries that request's id in its message headers."""
    request_id = current_request_id()
    if headers is not None and request_id:
        headers.setdefault("request_id", request_id)


@signals.task_prerun.connect
def start_task(task_id: str = "", task: Any = None, **_: Any) -> None:
    _started[task_id] = time.perf_counter()
    if task is None or task.request.is_eager:
        return  # an eager task runs inside the request: keep the request's log context
    bind_request_id(getattr(task.request, "request_id", None) or "")
    from structlog.contextvars import bind_contextvars

    bind_contextvars(task=task.name, task_id=task_id)


@signals.task_postrun.connect
def finish_task(task_id: str = "", task: Any = None, state: str | None = None, **_: Any) -> None:
    started = _started.pop(task_id, None)
    if started is not None and task is not None:
        metrics.TASK_DURATION.labels(task=task.name, state=state or "UNKNOWN").observe(
            time.perf_counter() - started
        )
    if task is not None and not task.request.is_eager:
        bind_request_id("")


@signals.task_retry.connect
def count_retry(sender: Any = None, **_: Any) -> None:
    metrics.TASK_RETRIES.labels(task=getattr(sender, "name", "unknown")).inc()


@signals.task_failure.connect
def count_failure(sender: Any = None, **_: Any) -> None:
    metrics.TASK_FAILURES.labels(task=getattr(sender, "name", "unknown")).inc()


@signals.worker_init.connect
def start_metrics_exporter(sender: Any = None, **_: Any) -> None:
    """Serve the worker's metrics on BATON_WORKER_METRICS_PORT (all pool processes in multiprocess mode)."""
    from django.conf import settings

    port = settings.WORKER_METRICS_PORT
    if not port:
        return
    if not metrics.multiprocess_dir():
        log.warning(
            "worker metrics: PROMETHEUS_MULTIPROC_DIR is unset, so a prefork pool's processes are not "
            "exported (only the solo and threads pools are); set it to an empty directory for this worker"
        )
    start_http_server(port, addr=settings.WORKER_METRICS_ADDR, registry=metrics.process_registry())
    log.info("worker metrics served", extra={"port": port, "addr": settings.WORKER_METRICS_ADDR})


@signals.worker_process_shutdown.connect
def forget_pool_process(**_: Any) -> None:
    if metrics.multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
