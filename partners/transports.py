"""The partner channels of the outbox: a native partner's callback, a vendor's API, operations e-mail."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime

from partners.adapters import get_adapter
from partners.adapters.base import DeliveryUpdate, PartnerError
from partners.http import PartnerHttpClient
from partners.models import Custody, Partner
from partners.services.polling import poll_custody
from tracking.models import OutboundMessage
from tracking.outbox import SendError, Sent
from tracking.transports import post_json, send_email


def _partner(message: OutboundMessage) -> Partner:
    partner = Partner.objects.filter(pk=message.payload.get("partner_id")).first()
    if partner is None:
        raise SendError("the partner no longer exists", permanent=True)
    return partner


def send_partner_callback(message: OutboundMessage) -> Sent:
    """POST the payload as JSON to the partner's callback, signed with its callback secret."""
    partner = _partner(message)
    body = json.dumps(
        {k: v for k, v in message.payload.items() if k != "partner_id"}, sort_keys=True
    ).encode()
    headers = {"X-Baton-Message-Id": str(message.pk)}
    if partner.callback_secret:
        digest = hmac.new(partner.callback_secret.encode(), body, hashlib.sha256).hexdigest()
        headers["X-Baton-Signature"] = f"sha256={digest}"
    return post_json(message.recipient, body, headers)


def send_partner_api(message: OutboundMessage) -> Sent:
    """Update the delivery through the vendor's API (the adapter's optional `update_delivery`), or, for
    a chase, pull the job's latest from it now (the adapter's optional `fetch`)."""
    partner = _partner(message)
    payload = message.payload
    if payload.get("type") == "chase":
        return _pull_now(message, partner)
    window = payload.get("window") or {}
    update = DeliveryUpdate(
        kind=str(payload.get("kind")),
        instructions=str(payload.get("text") or ""),
        window_from=datetime.fromisoformat(window["from"]) if window.get("from") else None,
        window_until=datetime.fromisoformat(window["until"]) if window.get("until") else None,
        reason=str((payload.get("fields") or {}).get("reason") or ""),
    )
    client = PartnerHttpClient()
    try:
        external_id = get_adapter(partner.adapter).update_delivery(
            client, config=partner.config, reference=str(payload.get("partner_reference")), update=update
        )
    except PartnerError as exc:
        raise SendError(
            exc.message,
            permanent=exc.permanent,
            status_code=client.last_status,
            response=client.last_body[:500].decode("utf-8", "replace"),
        ) from exc
    return Sent(
        status_code=client.last_status,
        response=client.last_body[:500].decode("utf-8", "replace"),
        external_id=external_id,
    )


def _pull_now(message: OutboundMessage, partner: Partner) -> Sent:
    """A chase through a pull API: fetch the job from the vendor now and record what it says."""
    custody = Custody.objects.filter(pk=message.payload.get("custody_id"), partner=partner).first()
    if custody is None:
        raise SendError("the job is no longer held by this partner", permanent=True)
    if custody.ended_at is not None:
        raise SendError("the job has changed hands since the chase was queued", permanent=True)
    client = PartnerHttpClient()
    try:
        count = poll_custody(custody.pk, client=client)
    except PartnerError as exc:
        raise SendError(
            exc.message, permanent=exc.permanent, response=client.last_body[:500].decode("utf-8", "replace")
        ) from exc
    return Sent(status_code=client.last_status, response=f"{count} events in the vendor's answer")


def register() -> None:
    from tracking.outbox import register_transport

    register_transport("partner_callback", send_partner_callback)
    register_transport("partner_api", send_partner_api)
    register_transport("partner_email", send_email)
