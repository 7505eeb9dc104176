from celery import shared_task
from django.db import OperationalError

from tracking import outbox


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=300, max_retries=10)
def send_outbound_message(message_id: int) -> str:
    """One attempt at sending an outbox message; failures are scheduled for retry by the outbox."""
    return outbox.send_message(message_id)


@shared_task
def sweep_outbox() -> int:
    """Enqueue outbound messages whose next attempt is due (retries, and any the broker lost)."""
    return outbox.sweep_outbox()
