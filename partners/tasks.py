import logging

from celery import Task, shared_task
from django.db import OperationalError

from partners import services
from partners.adapters.base import PartnerError
from partners.services import eta
from partners.services.sweep import run_sweep

log = logging.getLogger(__name__)


@shared_task(
    autoretry_for=(OperationalError, ConnectionError, PartnerError),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=10,
)
def process_inbound_message(message_id: int) -> str:
    """Apply one stored partner message; safe to repeat."""
    return services.process_inbound(message_id)


@shared_task(
    autoretry_for=(OperationalError, ConnectionError),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=10,
)
def process_inbound_messages(message_ids: list[int]) -> int:
    """Apply many stored partner messages, each shipment reconciled once; safe to repeat."""
    return len(services.process_inbound_batch(message_ids))


@shared_task
def sweep_unprocessed_messages() -> int:
    """Re-enqueue messages a lost broker message left waiting."""
    return services.sweep_unprocessed()


@shared_task
def poll_partners() -> int:
    """Pull the open shipments of partners that only offer a pull API."""
    return services.poll_pull_partners()


@shared_task(bind=True, max_retries=5)
def poll_custody(self: Task, custody_id: int) -> int:
    """Poll one job's holder; retry with backoff only when a retry can help (not on a 404 or bad key)."""
    try:
        return services.poll_custody(custody_id)
    except PartnerError as exc:
        if exc.permanent:
            log.warning("polling custody %s gave up: %s", custody_id, exc.message)
            return 0
        raise self.retry(exc=exc, countdown=min(300, 10 * 2**self.request.retries)) from exc


@shared_task
def materialise_scorecards() -> int:
    """Recompute today's and yesterday's partner figures (jobs still open change them)."""
    return services.materialise_recent()


@shared_task(expires=55)
def sweep_flags() -> str:
    """Raise and clear the flags that grow true with time (silence, ETA passed, late risk)."""
    return run_sweep().summary()


@shared_task(expires=3000)
def refresh_stage_durations() -> int:
    """Relearn how long each partner (and kind) takes from each status to delivery."""
    return eta.refresh_stage_durations().rows


@shared_task(expires=240)
def refresh_estimates() -> str:
    """Give open shipments Baton's ETA window and their risk of missing the promised window."""
    return eta.refresh_estimates().summary()
