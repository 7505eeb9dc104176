"""Uber Direct (DaaS) webhooks; webhook secret: the webhook signing key shown in the Direct Dashboard."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import tzinfo
from typing import Any

from partners.adapters.base import (
    Adapter,
    EventKind,
    InboundRequest,
    NormalizedEvent,
    PartnerError,
    Reason,
    Status,
    VerificationError,
    hmac_digest,
    load_json,
    parse_coordinates,
    parse_time,
    verify_any_secret,
)

# Delivery status -> canonical status, for the forward (del_) leg. `returned` on the forward leg means
# "cancelled, a return leg (ret_) was created": the goods are on their way back, not back yet.
STATUS_MAP: dict[str, str] = {
    "pending": Status.INFO_RECEIVED,
    "pickup": Status.ASSIGNED,
    "pickup_complete": Status.PICKED_UP,
    "dropoff": Status.OUT_FOR_DELIVERY,
    "delivered": Status.DELIVERED,
    "canceled": Status.CANCELLED,
    "returned": Status.RETURNING,
}
# The return leg (ret_ id, or kind event.delivery_return) reports on goods travelling back to the sender.
RETURN_STATUS_MAP: dict[str, str] = {
    "delivered": Status.RETURNED,
    "canceled": Status.EXCEPTION,
}
# Substrings of undeliverable_reason / cancel reason, first match wins.
REASON_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("unavailable", Reason.RECIPIENT_NOT_HOME),
    ("not_home", Reason.RECIPIENT_NOT_HOME),
    ("refuse", Reason.REFUSED),
    ("address", Reason.ADDRESS_NOT_FOUND),
    ("access", Reason.ACCESS_RESTRICTED),
    ("damage", Reason.DAMAGED),
    ("lost", Reason.LOST),
    ("courier", Reason.NO_COURIER),
    ("customer", Reason.CANCELLED_BY_CUSTOMER),
    ("merchant", Reason.CANCELLED_BY_MERCHANT),
)
_SIGNATURE_HEADERS = ("x-uber-signature", "x-postmates-signature")
_DELIVERY_KINDS = ("event.delivery_status", "event.delivery_return")


class UberDirectAdapter(Adapter):
    name = "uber_direct"

    def verify(self, request: InboundRequest, secrets: Sequence[str]) -> None:
        received = [request.headers[h].strip().lower() for h in _SIGNATURE_HEADERS if request.headers.get(h)]
        if not received:
            raise VerificationError("missing X-Uber-Signature / X-Postmates-Signature header")
        verify_any_secret(
            received,
            secrets,
            lambda secret: hmac_digest(secret.encode(), request.body).hex(),
            what="signature",
        )

    def parse(self, body: bytes, *, headers: Mapping[str, str], tz: tzinfo) -> list[NormalizedEvent]:
        payload = load_json(body)
        if not isinstance(payload, dict):
            raise PartnerError("Uber Direct payload is not an object", permanent=True)
        kind = str(payload.get("kind") or "")
        delivery = _object(payload.get("data"))
        reference = str(delivery.get("id") or payload.get("delivery_id") or "")
        if not reference or not (kind in _DELIVERY_KINDS or kind == "event.courier_update"):
            return []  # refund_request, shopping_progress: nothing about the job's progress
        is_return = reference.startswith("ret_") or kind == "event.delivery_return"
        common: dict[str, Any] = {
            "reference": reference,
            "alt_references": _alt_references(delivery, reference),
            "event_id": str(payload.get("id") or ""),
            "occurred_at": parse_time(payload.get("created") or delivery.get("updated"), tz),
        }
        courier = _object(delivery.get("courier"))
        point = parse_coordinates(payload.get("location") or courier.get("location"))
        if point:
            common["latitude"], common["longitude"] = point
        raw = str(payload.get("status") or delivery.get("status") or "")
        if kind == "event.courier_update":  # every ~20 s with a full delivery copy: position only
            return [NormalizedEvent(kind=EventKind.LOCATION, raw_status=raw, **common)] if point else []
        imminent = bool(delivery.get("courier_imminent"))
        status = RETURN_STATUS_MAP.get(raw, Status.RETURNING) if is_return else STATUS_MAP.get(raw)
        if status is None:
            return []
        extra: dict[str, Any] = {"raw_status": f"{raw}:imminent" if imminent else raw}
        if raw == "dropoff" and imminent and not is_return:
            status = Status.ARRIVING
        if status in (Status.ASSIGNED, Status.PICKED_UP, Status.OUT_FOR_DELIVERY, Status.ARRIVING):
            extra["eta"] = parse_time(delivery.get("dropoff_eta"), tz)
        if raw in ("canceled", "returned"):
            text = str(delivery.get("undeliverable_reason") or delivery.get("cancelation_reason") or "")
            extra["reason"] = next((r for k, r in REASON_KEYWORDS if k in text.lower()), Reason.UNKNOWN)
            extra["note"] = text
        if status in (Status.DELIVERED, Status.RETURNED):
            waypoint = delivery.get("return" if is_return and delivery.get("return") else "dropoff") or {}
            extra["proof"] = _proof(waypoint.get("verification") or {})
        return [NormalizedEvent(status=status, **common, **extra)]


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _alt_references(delivery: Mapping[str, Any], reference: str) -> tuple[str, ...]:
    related = delivery.get("related_deliveries") or []
    related_ids = [
        str(i["id"]) for i in (related if isinstance(related, list) else [related]) if i and i.get("id")
    ]
    # Original leg first, so a return leg lands on the original shipment; then the merchant reference.
    refs = [r for r in related_ids if r.startswith("del_")]
    refs += [str(delivery[k]) for k in ("original_delivery_id", "parent_delivery_id") if delivery.get(k)]
    manifest = _object(delivery.get("manifest"))
    refs += [str(v) for v in (delivery.get("external_id"), manifest.get("reference")) if v]
    refs += [r for r in related_ids if not r.startswith("del_")]
    return tuple(r for r in dict.fromkeys(refs) if r != reference)


def _proof(verification: Mapping[str, Any]) -> dict[str, Any] | None:
    proof: dict[str, Any] = {}
    signature = verification.get("signature") or {}
    if signature.get("image_url"):
        proof["signature_url"] = str(signature["image_url"])
    if signature.get("signer_name"):
        proof["recipient_name"] = str(signature["signer_name"]).split()[0]
    picture = verification.get("picture") or {}
    if picture.get("image_url"):
        proof["photo_urls"] = [str(picture["image_url"])]
    return proof or None
