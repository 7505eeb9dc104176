"""The Celery app, with a task request whose late acknowledgement survives a broker reconnect."""

import logging
import os

from celery import Celery, Task
from celery.worker.request import Request

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")

log = logging.getLogger(__name__)


class ReconnectSafeRequest(Request):
    """Acknowledge late without taking the worker down when the broker connection was replaced.

    When the worker loses Redis it closes the broken connection (kombu then sets the transport's
    `client` to None) and reconnects. A task that was running at that moment finishes afterwards and
    acknowledges on the old channel, whose first use rebuilds a pool from `transport.client`:
    kombu raises `AttributeError: 'NoneType' object has no attribute 'hostname'`, which is not one of
    the connection errors Celery expects there, so the worker stopped ("Unrecoverable error").
    The delivery tag belongs to the dead channel and cannot be acknowledged anyway: Redis gives the
    task back after the visibility timeout (or lost it in the restart, and the sweep re-enqueues
    it), and every task is safe to repeat, so the failed acknowledgement is logged and dropped.
    """

    def acknowledge(self) -> None:
        try:
            super().acknowledge()
        except AttributeError as exc:
            self.acknowledged = True
            log.warning("task %s: acknowledgement dropped, its broker channel is closed (%s)", self.id, exc)

    def reject(self, requeue: bool = False) -> None:
        try:
            super().reject(requeue=requeue)
        except AttributeError as exc:
            self.acknowledged = True
            log.warning("task %s: rejection dropped, its broker channel is closed (%s)", self.id, exc)


class BatonTask(Task):
    Request = "hub.celery:ReconnectSafeRequest"


app = Celery("hub", task_cls="hub.celery:BatonTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

import hub.worker  # noqa: E402, F401  (connects the logging, request-id and metrics signal handlers)
