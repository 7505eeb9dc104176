"""Storing what partners send (the outbox of ingest) and processing it in the worker."""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from hub import metrics
from hub.logs import current_request_id, log_context
from partners.adapters import get_adapter
from partners.adapters.base import NormalizedEvent, PartnerError
from partners.models import InboundMessage, Partner
from partners.services.matching import Recorded, record_message_events

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
    report: list[list[object]] | None = None,
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
        report=report,
    )
    labels = {"adapter": adapter_for(message), "channel": channel}
    if state == InboundMessage.State.REJECTED:
        metrics.MESSAGES_REJECTED.labels(**labels).inc()
    else:
        metrics.MESSAGES_ACCEPTED.labels(**labels).inc()
    if enqueue and state == InboundMessage.State.RECEIVED and not relay_enabled():
        enqueue_processing([message.pk])
    return message


def relay_enabled() -> bool:
    """With a broker, new messages reach the workers through the relay, not a publish per request.

    Eager Celery (development without Redis, and the tests) processes each message at once instead.
    """
    return bool(settings.BATON["RELAY"]) and not current_app.conf.task_always_eager


def enqueue_processing(message_ids: Iterable[int]) -> None:
    ids = list(message_ids)
    transaction.on_commit(lambda: _send_to_broker(ids))


def _send_to_broker(ids: list[int]) -> bool:
    """Publish processing tasks of up to WORKER_BATCH_MESSAGES messages; False if the broker is down."""
    from partners.tasks import process_inbound_messages

    size = settings.BATON["WORKER_BATCH_MESSAGES"]
    for start in range(0, len(ids), size):
        try:
            process_inbound_messages.delay(ids[start : start + size])
        except KombuOperationalError:
            # The messages are committed, so the partner's 2xx stands: the sweep enqueues them once
            # the broker is back. Stop here rather than wait out the publish retries for each batch.
            log.warning("broker down; %d stored message(s) left for the sweep", len(ids), exc_info=True)
            return False
    return True


# Hand-offs and polls are stored as received too, but applied by the request or task that stored
# them: the relay leaves them alone. Every other channel is processed by a worker.
APPLIED_IN_PLACE = (InboundMessage.Channel.HANDOFF, InboundMessage.Channel.POLL)


class Relay:
    """Publishes newly stored messages to the workers in batches: the inbound table is the outbox.

    Each pass reads the ids of messages received within `window` and still waiting (one index range
    scan) and publishes those it has not published yet. Anything it misses (relay down, broker down
    for longer than the window) is left to the sweep, as a lost broker message always was.

    While the workers still have at least a full batch published and waiting, new messages would
    only queue behind it, so they are held (at most `hold`) to go out as fuller batches: a batch
    costs the worker a fixed ~10 queries, so a worker that falls behind catches up faster on fewer,
    larger batches instead of ever more small ones. Idle workers get each message on the next pass.
    """

    def __init__(
        self, *, window: timedelta, hold: timedelta = timedelta(0), batch: int | None = None
    ) -> None:
        self.window = window
        self.hold = hold.total_seconds()
        self.batch = batch or settings.BATON["WORKER_BATCH_MESSAGES"]
        self.published: dict[int, float] = {}
        self.holding_since: float | None = None

    def run_once(self, *, now: float | None = None) -> int:
        """Publish what is new since the last pass; return how many messages were published."""
        now = time.monotonic() if now is None else now
        waiting = (
            InboundMessage.objects.filter(
                state=InboundMessage.State.RECEIVED, received_at__gte=timezone.now() - self.window
            )
            .exclude(channel__in=APPLIED_IN_PLACE)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        new, in_flight = [], 0
        for pk in waiting:
            if pk in self.published:
                in_flight += 1
            else:
                new.append(pk)
        if new and in_flight >= self.batch and len(new) < self.batch:
            self.holding_since = self.holding_since or now
            if now - self.holding_since < self.hold:
                return 0
        self.holding_since = None
        if new and _send_to_broker(new):
            self.published.update(dict.fromkeys(new, now))
        horizon = now - 2 * self.window.total_seconds()
        if len(self.published) > 10_000 or (self.published and next(iter(self.published.values())) < horizon):
            self.published = {pk: at for pk, at in self.published.items() if at >= horizon}
        return len(new)


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
    return process_inbound_batch([message_id], retry_alone=False).get(message_id, "missing")


def process_inbound_batch(message_ids: Sequence[int], *, retry_alone: bool = True) -> dict[int, str]:
    """Parse and apply many stored messages, reconciling each shipment they touch once; return their states.

    Safe to run again: finished messages are skipped and facts are deduplicated. A message whose
    parse fails for a reason a retry can cure goes back to the queue on its own (`retry_alone`),
    so it never holds up the rest; without `retry_alone` the error is raised.
    """
    messages = list(
        InboundMessage.objects.select_related("partner")
        .filter(pk__in=message_ids)
        # Failed too: a stale broker copy; a replay puts a failed message back first.
        .exclude(
            state__in=(
                InboundMessage.State.PROCESSED,
                InboundMessage.State.REJECTED,
                InboundMessage.State.FAILED,
            )
        )
        .order_by("pk")
    )
    states: dict[int, str] = dict(
        InboundMessage.objects.filter(pk__in=set(message_ids) - {m.pk for m in messages}).values_list(
            "pk", "state"
        )
    )
    if not messages:
        return states
    InboundMessage.objects.filter(pk__in=[m.pk for m in messages]).update(attempts=F("attempts") + 1)
    parsed: list[tuple[InboundMessage, list[NormalizedEvent]]] = []
    for message in messages:
        try:
            # Log lines about this message carry the id of the request that brought it.
            with log_context(request_id=message.request_id, message_id=message.pk):
                events = get_adapter(adapter_for(message)).parse(
                    bytes(message.body), headers=message.headers, tz=message.partner.tzinfo
                )
        except PartnerError as exc:
            if exc.permanent:
                states[message.pk] = finish_message(
                    message, InboundMessage.State.FAILED, f"cannot parse: {exc.message}", 0
                )
            elif retry_alone:
                _retry_alone(message.pk)
            else:
                raise
            continue
        parsed.append((message, events))
    finished_states: dict[int, str] = {}
    try:
        # The events and the messages' outcomes commit together: one commit (one WAL flush, which
        # every partner request's commit queues behind) a batch instead of two, and a message is
        # never seen processed without its events on the timeline.
        with transaction.atomic():
            recorded = record_message_events(parsed)
            for state, finished in _outcomes(parsed, recorded).items():
                for count, error, group in finished:
                    finish_messages(group, state, error, count)
                    finished_states.update((m.pk, state) for m in group)
    except Exception as exc:
        if len(parsed) > 1:  # find the poison: each message on its own, so the rest are not held up
            for message, _events in parsed:
                states.update(process_inbound_batch([message.pk], retry_alone=retry_alone))
            return states
        if not parsed:
            raise
        message = parsed[0][0]
        failures = message.failures + 1
        InboundMessage.objects.filter(pk=message.pk).update(failures=failures)
        states[message.pk] = _attempt_failed(message, failures, exc)
        return states
    states.update(finished_states)
    return states


# Errors a later attempt can cure (database or broker away); the task retries them sooner itself.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, ConnectionError)


def _attempt_failed(message: InboundMessage, attempts: int, exc: Exception) -> str:
    """Back off after a failed attempt; after the last allowed one the message is `failed`, replayable.

    A poison message (for example a value PostgreSQL refuses) would otherwise stay `received` and be
    re-run by every sweep for ever.
    """
    transient = isinstance(exc, TRANSIENT_ERRORS) or (isinstance(exc, PartnerError) and not exc.permanent)
    error = f"attempt {attempts}: {type(exc).__name__}: {exc}"[:2000]
    if attempts >= settings.BATON["MAX_PROCESSING_ATTEMPTS"]:
        log.warning("message %s failed for good after %d attempts: %s", message.pk, attempts, error)
        return finish_message(message, InboundMessage.State.FAILED, f"gave up after {error}")
    delay = min(3600, 30 * 2 ** (attempts - 1))
    InboundMessage.objects.filter(pk=message.pk).update(
        error=error, retry_at=timezone.now() + timedelta(seconds=delay)
    )
    if transient:
        raise exc
    log.warning("message %s attempt %d failed, retried in %d s: %s", message.pk, attempts, delay, error)
    return "retrying"


def _outcomes(
    parsed: Sequence[tuple[InboundMessage, list[NormalizedEvent]]], recorded: Recorded
) -> dict[str, list[tuple[int, str, list[InboundMessage]]]]:
    """Messages grouped by what is written back on them, so alike messages take one update."""
    groups: dict[tuple[str, int, str], list[InboundMessage]] = defaultdict(list)
    for message, events in parsed:
        missing = recorded.unmatched.get(message.pk, [])
        full = recorded.over_ceiling.get(message.pk, [])
        if full:
            # Accepted just before the shipment reached its ceiling; replayable once it is raised.
            reason = (
                f"{len(full)} event(s) not recorded: the shipment {', '.join(sorted(set(full)))[:200]} holds "
                f"{settings.BATON['MAX_EVENTS_PER_SHIPMENT']} events, the most one shipment keeps "
                "(BATON_MAX_EVENTS_PER_SHIPMENT)"
            )
            key = (InboundMessage.State.FAILED.value, len(events) - len(missing) - len(full), reason)
        elif missing:
            refs = sorted({r for e in missing for r in (e.references or (e.group_reference,))})
            reason = f"no shipment held by {message.partner.slug} under: {', '.join(refs)[:500]}"
            # Kept apart so an assignment replays only the messages that mention its references.
            InboundMessage.objects.filter(pk=message.pk).update(unmatched_references=reference_list(refs))
            key = (InboundMessage.State.UNMATCHED.value, len(events) - len(missing), reason)
        else:
            key = (InboundMessage.State.PROCESSED.value, len(events), "")
        groups[key].append(message)
    result: dict[str, list[tuple[int, str, list[InboundMessage]]]] = defaultdict(list)
    for (state, count, error), group in groups.items():
        result[state].append((count, error, group))
    return result


def _retry_alone(message_id: int) -> None:
    from partners.tasks import process_inbound_message

    transaction.on_commit(lambda: process_inbound_message.delay(message_id))


def finish_message(message: InboundMessage, state: str, error: str, recorded: int = 0) -> str:
    return finish_messages([message], state, error, recorded)


def finish_messages(messages: Sequence[InboundMessage], state: str, error: str, recorded: int = 0) -> str:
    """Write the outcome on messages that share it (one update), with a metric and a log line each."""
    now = timezone.now()
    InboundMessage.objects.filter(pk__in=[m.pk for m in messages]).update(
        state=state, error=error, events_recorded=recorded, processed_at=now
    )
    for message in messages:
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
        InboundMessage.objects.filter(pk__in=ids).update(
            state=InboundMessage.State.RECEIVED, error="", failures=0, retry_at=None
        )
        enqueue_processing(ids)
    return len(ids)


def sweep_unprocessed(*, older_than: timedelta | None = None, limit: int = 5000) -> int:
    """Re-enqueue messages still waiting after a while: a lost broker message delays, never loses.

    Fair: the oldest first, and messages backing off after a failed attempt wait their turn, so a
    pile of bad messages cannot starve older good ones.
    """
    now = timezone.now()
    age = older_than or timedelta(seconds=settings.BATON["SWEEP_AFTER_SECONDS"])
    ids = list(
        InboundMessage.objects.filter(state=InboundMessage.State.RECEIVED, received_at__lt=now - age)
        .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
        .order_by("received_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    if ids:
        enqueue_processing(ids)
    return len(ids)


def reference_list(references: Iterable[str]) -> str:
    """References stored as |A|B| so that one can be looked up with a plain `contains`."""
    refs = sorted({r.replace("|", "") for r in references if r})
    return f"|{'|'.join(refs)}|" if refs else ""


def replay_unmatched_mentioning(partner: Partner, references: Iterable[str]) -> int:
    """Replay the partner's unmatched messages that name one of these references (a new assignment's)."""
    condition = Q()
    for reference in {r.replace("|", "") for r in references if r}:
        condition |= Q(unmatched_references__contains=f"|{reference}|")
    if not condition:
        return 0
    ids = list(
        InboundMessage.objects.filter(condition, partner=partner, state=InboundMessage.State.UNMATCHED)
        .values_list("pk", flat=True)
        .order_by("received_at")
    )
    if ids:
        InboundMessage.objects.filter(pk__in=ids).update(state=InboundMessage.State.RECEIVED, error="")
        enqueue_processing(ids)
    return len(ids)
