"""Merchant webhooks (Standard Webhooks): register endpoints, queue events in the outbox, sign and send.

Events are queued in the transaction of the change that caused them (a `tracking.changes` listener,
and `announce_case` for cases), one outbox message per endpoint. Each message carries its
`webhook-id` (stable across retries and replays, so receivers deduplicate) and a per-shipment
`sequence` (so receivers can order what arrives out of order). The `merchant_webhook` transport signs
at send time (the timestamp is the attempt's) with every live secret, and posts through the guarded
`post_json` (SSRF check re-resolved, connected to the checked address, no redirects). When the outbox
gives up on a message, the endpoint is disabled and operations are told by e-mail.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from tracking.changes import ShipmentChange
from tracking.models import Merchant, OutboundMessage, Shipment, WebhookEndpoint, new_webhook_secret
from tracking.outbox import SendError, Sent, UnsafeURL, check_public_url, queue_message, replay_message
from tracking.transports import post_json

TRANSPORT = "merchant_webhook"
EVENT_TYPES = [code for code, _ in WebhookEndpoint.EVENT_TYPES]


class InvalidEndpoint(ValueError):
    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in fields.items()))
        self.fields = fields


def check_endpoint(url: str, event_types: Iterable[str]) -> None:
    """Refuse a URL Baton must not call (private, loopback, metadata...) and unknown event types."""
    fields: dict[str, list[str]] = {}
    try:
        check_public_url(url)
    except UnsafeURL as exc:
        fields["url"] = [str(exc)]
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        fields["event_types"] = [
            f"Unknown event type(s): {', '.join(unknown)}. Known: {', '.join(EVENT_TYPES)}."
        ]
    if fields:
        raise InvalidEndpoint(fields)


def register_endpoint(
    merchant: Merchant, *, url: str, event_types: Iterable[str] = (), description: str = ""
) -> WebhookEndpoint:
    """A new endpoint with a fresh secret (show it to the merchant once, from the returned row)."""
    types = list(dict.fromkeys(event_types))
    check_endpoint(url, types)
    return WebhookEndpoint.objects.create(
        merchant=merchant, url=url, event_types=types, description=description[:200]
    )


def rotate_secret(
    endpoint: WebhookEndpoint, *, overlap: timedelta = timedelta(hours=24), now: datetime | None = None
) -> WebhookEndpoint:
    """A new secret; the old one keeps signing beside it for `overlap` while the merchant switches."""
    now = now or timezone.now()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + overlap
    endpoint.secret = new_webhook_secret()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    return endpoint


def enable_endpoint(endpoint: WebhookEndpoint) -> None:
    endpoint.is_active = True
    endpoint.disabled_at = None
    endpoint.disabled_reason = ""
    endpoint.save(update_fields=["is_active", "disabled_at", "disabled_reason"])


# --- what happens -> what is queued ---------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def shipment_data(shipment: Shipment) -> dict[str, Any]:
    """What a merchant is told about its shipment (no customer contact details)."""
    custody = shipment.current_custody
    return {
        "reference": shipment.reference,
        "merchant": shipment.merchant,
        "status": shipment.status,
        "reason": shipment.reason,
        "status_at": _iso(shipment.status_at),
        "eta": _iso(shipment.eta),
        "custodian": custody.partner.slug if custody is not None else None,
        "custodian_reference": custody.partner_reference if custody is not None else None,
        "flags": sorted(shipment.all_flags),
    }


def change_events(change: ShipmentChange) -> list[tuple[str, dict[str, Any]]]:
    """The webhook event types a change makes, each with what was true before."""
    events: list[tuple[str, dict[str, Any]]] = []
    before = change.before
    if change.status_changed:
        events.append(("shipment.status_changed", {"status": before.status, "reason": before.reason}))
    if change.eta_changed:
        events.append(("shipment.eta_changed", {"eta": _iso(before.eta)}))
    if change.custody_changed:
        events.append(("custody.changed", {"custody_id": before.custody_id}))
    if change.flags_raised:
        events.append(("shipment.flagged", {"raised": sorted(change.flags_raised)}))
    return events


def on_shipment_change(shipment: Shipment, change: ShipmentChange) -> None:
    """`tracking.changes` listener: queue a webhook per event type per endpoint that wants it."""
    events = change_events(change)
    if events and _anyone_wants(shipment, [kind for kind, _ in events]):
        data = shipment_data(shipment)
        queue_events(shipment, [(kind, {"shipment": data, "previous": prev}) for kind, prev in events])


def announce_case(shipment: Shipment | None, event_type: str, case: Mapping[str, Any]) -> None:
    """Queue `case.opened` / `case.resolved` for the shipment's merchant (called by contactcentre)."""
    if shipment is not None and _anyone_wants(shipment, [event_type]):
        queue_events(shipment, [(event_type, {"shipment": shipment_data(shipment), "case": dict(case)})])


def _anyone_wants(shipment: Shipment, event_types: list[str]) -> bool:
    """Asked on every change, so cached: most merchants have no endpoint, and ingest pays nothing then."""
    return any(e.wants(kind) for e in WebhookEndpoint.active_for(shipment.merchant) for kind in event_types)


def queue_events(shipment: Shipment, events: list[tuple[str, dict[str, Any]]]) -> list[OutboundMessage]:
    """Number each event in the shipment's sequence and queue one message per interested endpoint."""
    endpoints = WebhookEndpoint.active_for(shipment.merchant)
    queued: list[OutboundMessage] = []
    for event_type, data in events:
        targets = [e for e in endpoints if e.wants(event_type)]
        if not targets:
            continue
        sequence = next_sequence(shipment)
        now = timezone.now()
        for endpoint in targets:
            body = {
                "type": event_type,
                "timestamp": now.isoformat(),
                "data": {**data, "sequence": sequence},
            }
            message = queue_message(
                transport=TRANSPORT,
                purpose=event_type,
                recipient=endpoint.url,
                shipment=shipment,
                payload={"endpoint": endpoint.pk, "webhook_id": f"msg_{uuid.uuid4().hex}", "body": body},
            )
            if message is not None:
                queued.append(message)
    return queued


def next_sequence(shipment: Shipment) -> int:
    """The shipment's next webhook number; the update holds its row lock until the transaction ends."""
    Shipment.objects.filter(pk=shipment.pk).update(webhook_sequence=F("webhook_sequence") + 1)
    number: int = Shipment.objects.values_list("webhook_sequence", flat=True).get(pk=shipment.pk)
    shipment.webhook_sequence = number
    return number


# --- sending --------------------------------------------------------------------------------------


def sign(endpoint: WebhookEndpoint, webhook_id: str, body: str, *, now: datetime) -> dict[str, str]:
    """Standard Webhooks headers; one signature per live secret, space-separated, during an overlap."""
    signatures = [Webhook(secret).sign(webhook_id, now, body) for secret in endpoint.signing_secrets(now)]
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def send_merchant_webhook(message: OutboundMessage) -> Sent:
    """The `merchant_webhook` transport: sign now, POST through the SSRF guard."""
    endpoint = WebhookEndpoint.objects.filter(pk=message.payload.get("endpoint")).first()
    if endpoint is None:
        raise SendError("the webhook endpoint was deleted", permanent=True)
    if not endpoint.is_active:
        raise SendError("the webhook endpoint is disabled; enable it and replay", permanent=True)
    body = json.dumps(message.payload["body"], separators=(",", ":"))
    headers = sign(endpoint, message.payload["webhook_id"], body, now=timezone.now())
    return post_json(endpoint.url, body.encode(), headers)


def on_message_failed(message: OutboundMessage) -> None:
    """The outbox gave up on a message: disable its endpoint (once) and tell operations by e-mail."""
    endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=message.payload.get("endpoint")).first()
    if endpoint is None or not endpoint.is_active:
        return
    now = timezone.now()
    endpoint.is_active = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = f"Message {message.pk} failed for good: {message.last_error}"[:300]
    endpoint.save(update_fields=["is_active", "disabled_at", "disabled_reason"])
    queue_message(
        transport="email",
        purpose="operations.webhook_disabled",
        recipient=settings.OPERATIONS_EMAIL,
        subject=f"Webhook endpoint disabled for {endpoint.merchant.name}",
        body=(
            f"Baton stopped sending webhooks to {endpoint.url} ({endpoint.merchant.name}) "
            f"at {now:%Y-%m-%d %H:%M} UTC.\n"
            f"Last error: {message.last_error}\n\n"
            "Once the receiver works again, enable the endpoint in the admin and replay the failed messages "
            "(admin action, or: manage.py replay_webhooks --endpoint "
            f"{endpoint.pk} --from <ISO> --to <ISO>).\n"
        ),
        dedupe_key=f"webhook-disabled:{endpoint.pk}:{now:%Y%m%d%H%M%S}",
    )


def replay(
    *, endpoint: WebhookEndpoint | None = None, start: datetime, end: datetime, failed_only: bool = False
) -> int:
    """Send again every webhook created in [start, end), optionally one endpoint's, optionally failed ones."""
    messages = OutboundMessage.objects.filter(transport=TRANSPORT, created_at__gte=start, created_at__lt=end)
    if endpoint is not None:
        messages = messages.filter(payload__endpoint=endpoint.pk)
    if failed_only:
        messages = messages.filter(state=OutboundMessage.State.FAILED)
    count = 0
    with transaction.atomic():
        for message in messages.order_by("created_at", "id"):
            replay_message(message)
            count += 1
    return count
