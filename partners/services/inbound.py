"""Storing what partners send (the outbox of ingest) and processing it in the worker."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from hub import metrics
from hub.logs import current_request_id, log_context
from partners.adapters import get_adapter
from partners.adapters.base import PartnerError
from partners.models import InboundMessage, Partner
from partners.services.matching import record_events

log = logging.getLogger(__name__)


def record_inbound(
    partner: Partner,
    *,
    channel: str,
    body: bytes,
    headers: Mapping[str, str],
    state: str = InboundMessage.State.RECEIVED,
    error: str = "",
    enqueue: bool = True,
) -> InboundMessage:
    """Store a partner's raw message; when it is to be processed, enqueue that once it is committed."""
    message = InboundMessage.objects.create(
        partner=partner,
        channel=channel,
        body=body,
        headers=dict(headers),
        content_hash=hashlib.sha256(body).hexdigest(),
        received_at=timezone.now(),
        state=state,
        error=error,
        request_id=current_request_id(),
    )
    labels = {"adapter": adapter_for(message), "channel": channel}
    if state == InboundMessage.State.REJECTED:
        metrics.MESSAGES_REJECTED.labels(**labels).inc()
    else:
        metrics.MESSAGES_ACCEPTED.labels(**labels).inc()
    if enqueue and state == InboundMessage.State.RECEIVED:
        enqueue_processing([message.pk])
    return message


def enqueue_processing(message_ids: Iterable[int]) -> None:
    ids = list(message_ids)
    transaction.on_commit(lambda: _send_to_broker(ids))


def _send_to_broker(ids: list[int]) -> None:
    from partners.tasks import process_inbound_message

    for message_id in ids:
        try:
            process_inbound_message.delay(message_id)
        except KombuOperationalError:
            # The messages are committed, so the partner's 2xx stands: the sweep enqueues them once
            # the broker is back. Stop here rather than wait out the publish retries for each id.
            log.warning("broker down; %d stored message(s) left for the sweep", len(ids), exc_info=True)
            return


def adapter_for(message: InboundMessage) -> str:
    """API calls, driver links and hand-offs speak Baton's format, uploads CSV, the rest the vendor's."""
    by_channel = {
        InboundMessage.Channel.API: "native",
        InboundMessage.Channel.DRIVER_LINK: "native",
        InboundMessage.Channel.UPLOAD: "csv",
    }
    return by_channel.get(InboundMessage.Channel(message.channel), message.partner.adapter)


def process_inbound(message_id: int) -> str:
    """Parse and apply one stored message. Safe to run again: facts are deduplicated."""
    message = InboundMessage.objects.select_related("partner").filter(pk=message_id).first()
    if message is None:
        return "missing"
    if message.state in (InboundMessage.State.PROCESSED, InboundMessage.State.REJECTED):
        return message.state
    # The worker's log lines for this message carry the id of the request that brought it.
    with log_context(request_id=message.request_id, message_id=message.pk):
        return _apply_message(message)


def _apply_message(message: InboundMessage) -> str:
    partner = message.partner
    InboundMessage.objects.filter(pk=message.pk).update(attempts=message.attempts + 1)
    try:
        events = get_adapter(adapter_for(message)).parse(
            bytes(message.body), headers=message.headers, tz=partner.tzinfo
        )
    except PartnerError as exc:
        if not exc.permanent:
            raise
        return finish_message(message, InboundMessage.State.FAILED, f"cannot parse: {exc.message}", 0)
    unmatched = record_events(partner, events, message=message)
    if unmatched:
        refs = sorted({r for e in unmatched for r in (e.references or (e.group_reference,))})
        reason = f"no shipment held by {partner.slug} under: {', '.join(refs)[:500]}"
        return finish_message(message, InboundMessage.State.UNMATCHED, reason, len(events) - len(unmatched))
    return finish_message(message, InboundMessage.State.PROCESSED, "", len(events))


def finish_message(message: InboundMessage, state: str, error: str, recorded: int = 0) -> str:
    now = timezone.now()
    InboundMessage.objects.filter(pk=message.pk).update(
        state=state, error=error, events_recorded=recorded, processed_at=now
    )
    lag = (now - message.received_at).total_seconds()
    metrics.MESSAGES_FINISHED.labels(outcome=state, channel=message.channel).inc()
    metrics.ACCEPTANCE_LAG.labels(outcome=state).observe(max(0.0, lag))
    log.info(
        "inbound message finished",
        extra={
            "message_id": message.pk,
            "request_id": message.request_id,
            "partner": message.partner.slug,
            "channel": message.channel,
            "state": state,
            "events_recorded": recorded,
            "lag_seconds": round(lag, 3),
        },
    )
    return state


def replay_messages(
    *,
    partner: Partner | None = None,
    states: Sequence[str] = (InboundMessage.State.UNMATCHED, InboundMessage.State.FAILED),
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Put matching messages back in the queue (for example once a missing assignment exists)."""
    messages = InboundMessage.objects.filter(state__in=states)
    if partner is not None:
        messages = messages.filter(partner=partner)
    if since is not None:
        messages = messages.filter(received_at__gte=since)
    if until is not None:
        messages = messages.filter(received_at__lt=until)
    ids = list(messages.values_list("pk", flat=True))
    if ids:
        InboundMessage.objects.filter(pk__in=ids).update(state=InboundMessage.State.RECEIVED, error="")
        enqueue_processing(ids)
    return len(ids)


def sweep_unprocessed(*, older_than: timedelta | None = None) -> int:
    """Re-enqueue messages still waiting after a while: a lost broker message delays, never loses."""
    age = older_than or timedelta(seconds=settings.BATON["SWEEP_AFTER_SECONDS"])
    ids = list(
        InboundMessage.objects.filter(
            state=InboundMessage.State.RECEIVED, received_at__lt=timezone.now() - age
        ).values_list("pk", flat=True)[:5000]
    )
    if ids:
        enqueue_processing(ids)
    return len(ids)
