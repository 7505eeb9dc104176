"""The outbox: everything Baton sends is stored first, then sent by a task through a transport.

Queue with `queue_message` inside the transaction that made the change; `send_message` (run by the
`tracking.tasks.send_outbound_message` task, and re-driven by the `sweep_outbox` beat job) makes one
attempt, logs it as a `DeliveryAttempt`, and schedules a retry with exponential backoff and jitter
until the message's age passes `OUTBOX_GIVE_UP_SECONDS`. Transports are registered by name
(`register_transport`), so an app above the core can add one (a partner's callback, say) and any
app can queue for it without importing it.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from tracking.models import DeliveryAttempt, OutboundMessage, Shipment

log = logging.getLogger(__name__)


class SendError(Exception):
    """A transport could not deliver. `permanent` errors are not retried (a refused address, say)."""

    def __init__(
        self, message: str, *, permanent: bool = False, status_code: int | None = None, response: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.status_code = status_code
        self.response = response


@dataclass(frozen=True)
class Sent:
    """What a transport reports on success."""

    status_code: int | None = None
    response: str = ""
    external_id: str = ""


Transport = Callable[[OutboundMessage], Sent]
FailureHook = Callable[[OutboundMessage], None]
_transports: dict[str, Transport] = {}
_failure_hooks: dict[str, FailureHook] = {}
_purpose_failure_hooks: dict[str, FailureHook] = {}


def register_transport(name: str, transport: Transport, *, on_failed: FailureHook | None = None) -> None:
    """Name a transport; `on_failed(message)` runs in the attempt's transaction when one fails for good."""
    _transports[name] = transport
    if on_failed is not None:
        _failure_hooks[name] = on_failed


def on_purpose_failed(purpose: str, hook: FailureHook) -> None:
    """Run `hook(message)` in the attempt's transaction when a message of `purpose` fails for good,
    whatever its transport (a partner chase by callback, API or e-mail, say)."""
    _purpose_failure_hooks[purpose] = hook


def transport_names() -> list[str]:
    return sorted(_transports)


def queue_message(
    *,
    transport: str,
    purpose: str,
    recipient: str,
    shipment: Shipment | None = None,
    subject: str = "",
    body: str = "",
    payload: Mapping[str, Any] | None = None,
    dedupe_key: str | None = None,
    send_at: datetime | None = None,
) -> OutboundMessage | None:
    """Store a message to send once the current transaction commits; None if `dedupe_key` was used."""
    if transport not in _transports:
        raise ValueError(f"no transport named {transport!r} (registered: {', '.join(transport_names())})")
    try:
        with transaction.atomic():
            message = OutboundMessage.objects.create(
                transport=transport,
                purpose=purpose,
                recipient=recipient,
                shipment=shipment,
                subject=subject[:300],
                body=body,
                payload=dict(payload or {}),
                dedupe_key=dedupe_key,
                next_attempt_at=send_at or timezone.now(),
            )
    except IntegrityError:
        if dedupe_key is None:
            raise
        return None
    if send_at is None or send_at <= timezone.now():
        enqueue_sending([message.pk])
    return message


def enqueue_sending(message_ids: list[int]) -> None:
    transaction.on_commit(lambda: _send_to_broker(message_ids))


def _send_to_broker(ids: list[int]) -> None:
    from tracking.tasks import send_outbound_message

    for message_id in ids:
        try:
            send_outbound_message.delay(message_id)
        except Exception:  # the broker is down: the message is stored, the sweep sends it later
            log.warning("broker unavailable; outbound message(s) left for the outbox sweep", exc_info=True)
            return


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff with full jitter: up to 30 s, 60 s, 120 s, ... capped at an hour."""
    ceiling = min(30 * 2 ** max(attempts - 1, 0), 3600)
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def send_message(message_id: int, *, now: datetime | None = None) -> str:
    """Make one attempt at sending a due message; safe to call twice (a claimed row is skipped)."""
    now = now or timezone.now()
    with transaction.atomic():
        message = (
            OutboundMessage.objects.select_for_update(skip_locked=True)
            .filter(pk=message_id, state__in=[OutboundMessage.State.PENDING, OutboundMessage.State.RETRYING])
            .first()
        )
        if message is None or message.next_attempt_at > now:
            return "skipped"
        transport = _transports.get(message.transport)
        started = time.monotonic()
        try:
            if transport is None:
                raise SendError(f"no transport named {message.transport!r}", permanent=True)
            sent = transport(message)
        except SendError as exc:
            return _record_failure(message, exc, now=now, started=started)
        except Exception as exc:  # a transport bug must not lose the message: log, retry, show it
            log.exception("transport %s raised", message.transport)
            return _record_failure(
                message, SendError(f"{type(exc).__name__}: {exc}"), now=now, started=started
            )
        DeliveryAttempt.objects.create(
            message=message,
            attempted_at=now,
            succeeded=True,
            status_code=sent.status_code,
            latency_ms=_elapsed_ms(started),
            response_excerpt=sent.response[:500],
        )
        message.state = OutboundMessage.State.SENT
        message.attempts += 1
        message.sent_at = now
        message.last_error = ""
        message.external_id = sent.external_id[:200]
        message.save(update_fields=["state", "attempts", "sent_at", "last_error", "external_id"])
        return message.state


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _record_failure(message: OutboundMessage, exc: SendError, *, now: datetime, started: float) -> str:
    DeliveryAttempt.objects.create(
        message=message,
        attempted_at=now,
        succeeded=False,
        status_code=exc.status_code,
        latency_ms=_elapsed_ms(started),
        response_excerpt=exc.response[:500],
        error=exc.message[:2000],
    )
    message.attempts += 1
    message.last_error = exc.message[:2000]
    # A replay starts a new window: a message replayed days after it was created gets its retries too.
    window_start = message.replayed_at or message.created_at
    give_up_at = window_start + timedelta(seconds=settings.BATON["OUTBOX_GIVE_UP_SECONDS"])
    next_at = now + retry_delay(message.attempts)
    if exc.permanent or next_at > give_up_at:
        message.state = OutboundMessage.State.FAILED
    else:
        message.state = OutboundMessage.State.RETRYING
        message.next_attempt_at = next_at
    message.save(update_fields=["state", "attempts", "last_error", "next_attempt_at"])
    if message.state == OutboundMessage.State.FAILED:
        for hook in (_failure_hooks.get(message.transport), _purpose_failure_hooks.get(message.purpose)):
            if hook is not None:
                hook(message)
    return message.state


def sweep_outbox(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Enqueue every due message, oldest first: retries come due, lost broker messages are found."""
    now = now or timezone.now()
    ids = list(
        OutboundMessage.objects.filter(
            state__in=[OutboundMessage.State.PENDING, OutboundMessage.State.RETRYING],
            next_attempt_at__lte=now,
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    if ids:
        enqueue_sending(ids)
    return len(ids)


def replay_message(message: OutboundMessage) -> None:
    """Send a message again (an operator's replay), keeping its identity and its attempt log."""
    now = timezone.now()
    OutboundMessage.objects.filter(pk=message.pk).update(
        state=OutboundMessage.State.PENDING, next_attempt_at=now, replayed_at=now
    )
    enqueue_sending([message.pk])


# --- guarding outbound HTTP -----------------------------------------------------------------------


class UnsafeURL(ValueError):
    """A URL Baton will not call: not http(s), or its host resolves to a private address."""


def check_public_url(url: str) -> list[str]:
    """Resolve the URL's host and refuse private, loopback, link-local, reserved or metadata addresses.

    Returns the resolved addresses. `BATON_ALLOW_PRIVATE_URLS` (development and tests only) allows them.
    Call it when a URL is registered and again right before each request (DNS can change).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL("the URL must be http:// or https:// with a host name")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURL(f"the host {parts.hostname!r} does not resolve") from exc
    addresses = sorted({str(info[4][0]) for info in infos})
    if settings.BATON["ALLOW_PRIVATE_URLS"]:
        return addresses
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global or ip.is_multicast:
            raise UnsafeURL(f"the host {parts.hostname!r} resolves to a private or reserved address")
    return addresses
