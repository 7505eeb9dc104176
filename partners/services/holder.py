"""Send what a customer asked (instructions, a new day, a cancellation) to whoever holds the job.

Through the holder's own channel, via the outbox: a native partner's callback, the vendor's API
where the adapter can update a delivery, else the partner's operations contact by e-mail. None when
the holder has no channel (the request is still on the timeline for agents to pass on).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from partners.adapters import get_adapter
from partners.models import Custody
from tracking.models import OutboundMessage, Shipment
from tracking.outbox import queue_message

KIND_WORDS = {
    "instructions": "delivery instructions",
    "reschedule": "a new delivery day",
    "cancel": "a cancellation",
}


@dataclass(frozen=True)
class Routed:
    """Where a request went: the outbox message (None if the holder has no channel) and the holder."""

    message: OutboundMessage | None
    holder: str
    channel: str


def send_to_holder(
    shipment: Shipment,
    *,
    kind: str,
    text: str,
    fields: Mapping[str, Any],
    window: tuple[datetime, datetime] | None = None,
    dedupe_key: str | None = None,
) -> Routed:
    """Queue the customer's request to the current holder on its channel (inside the caller's transaction)."""
    custody = (
        Custody.objects.select_related("partner").filter(shipment=shipment, ended_at__isnull=True).first()
    )
    if custody is None:
        return Routed(None, "", "")
    partner = custody.partner
    common = {
        "type": "customer_request",
        "kind": kind,
        "partner_reference": custody.partner_reference,
        "merchant_reference": shipment.reference,
        "requested_at": timezone.now().isoformat(),
        "text": text,
        "fields": dict(fields),
        "window": {"from": window[0].isoformat(), "until": window[1].isoformat()} if window else None,
    }
    purpose = f"partner.customer_{kind}"
    if partner.callback_url:
        message = queue_message(
            transport="partner_callback",
            purpose=purpose,
            recipient=partner.callback_url,
            shipment=shipment,
            payload={**common, "partner_id": partner.pk},
            dedupe_key=dedupe_key,
        )
        return Routed(message, partner.name, "partner_callback")
    adapter = get_adapter(partner.adapter)
    if adapter.can_update(partner.config, kind):
        message = queue_message(
            transport="partner_api",
            purpose=purpose,
            recipient=partner.slug,
            shipment=shipment,
            payload={**common, "partner_id": partner.pk},
            dedupe_key=dedupe_key,
        )
        return Routed(message, partner.name, "partner_api")
    if partner.ops_email:
        subject = f"Customer request for job {custody.partner_reference}: {KIND_WORDS.get(kind, kind)}"
        body = (
            f"The customer of your job {custody.partner_reference} (order {shipment.reference}) asks for "
            f"{KIND_WORDS.get(kind, kind)}:\n\n{text}\n\n"
            "Sent by Baton on behalf of the retailer. Please update the job in your system."
        )
        message = queue_message(
            transport="partner_email",
            purpose=purpose,
            recipient=partner.ops_email,
            shipment=shipment,
            subject=" ".join(subject.split()),
            body=body,
            payload=common,
            dedupe_key=dedupe_key,
        )
        return Routed(message, partner.name, "partner_email")
    return Routed(None, partner.name, "")
