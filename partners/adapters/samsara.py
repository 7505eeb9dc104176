"""Samsara (Webhooks 2.0): webhook secret is the base64 secret key Samsara shows for the webhook."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any

from partners.adapters.base import (
    Adapter,
    EventKind,
    InboundRequest,
    NormalizedEvent,
    Reason,
    Status,
    VerificationError,
    hmac_digest,
    load_json,
    parse_time,
    verify_any_secret,
)

# Event types (and outcome keys derived from POD forms) to canonical statuses; None: no status change.
STATUS_MAP: dict[str, str | None] = {
    "RouteStopArrival": Status.ARRIVING,
    "RouteStopDeparture": None,  # says nothing about success; the next stop's ETA is all we take
    "GeofenceExit": Status.OUT_FOR_DELIVERY,  # vehicle-level: every open stop of the route
    "delivered": Status.DELIVERED,
    "not_delivered": Status.ATTEMPT_FAILED,
}
# Keywords in the selected answer of an org-defined outcome field; first match wins.
OUTCOME_REASONS: tuple[tuple[str, str], ...] = (
    ("refus", Reason.REFUSED),
    ("no answer", Reason.RECIPIENT_NOT_HOME),
    ("not home", Reason.RECIPIENT_NOT_HOME),
    ("not in", Reason.RECIPIENT_NOT_HOME),
    ("address", Reason.ADDRESS_NOT_FOUND),
    ("access", Reason.ACCESS_RESTRICTED),
    ("damage", Reason.DAMAGED),
)
_FAILED_WORDS = ("not delivered", "undeliver", "failed", "unable", "no answer", "refus")
_WINDOW = timedelta(minutes=5)


def _ids(obj: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(v) for v in (obj.get("externalIds") or {}).values() if v)


def _first_name(name: Any) -> str:
    return str(name).split()[0] if name and str(name).split() else ""


class SamsaraAdapter(Adapter):
    name = "samsara"

    def verify(self, request: InboundRequest, secrets: Sequence[str]) -> None:
        timestamp = request.headers.get("x-samsara-timestamp")
        signature = request.headers.get("x-samsara-signature")
        if not timestamp or not signature:
            raise VerificationError("missing X-Samsara-Timestamp or X-Samsara-Signature header")
        try:
            sent = int(timestamp)
        except ValueError as exc:
            raise VerificationError(f"X-Samsara-Timestamp is not epoch seconds: {timestamp!r}") from exc
        if abs(request.now.timestamp() - sent) > _WINDOW.total_seconds():
            raise VerificationError("X-Samsara-Timestamp is outside the 5-minute window")
        message = b"v1:" + timestamp.encode() + b":" + request.body

        def expected(secret: str) -> str:
            try:
                key = base64.b64decode(secret, validate=True)
            except (binascii.Error, ValueError):
                key = secret.encode()
            return "v1=" + hmac_digest(key, message).hex()

        verify_any_secret(signature, secrets, expected, what="X-Samsara-Signature")

    def parse(self, body: bytes, *, headers: Mapping[str, str], tz: tzinfo) -> list[NormalizedEvent]:
        payload = load_json(body)
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
            return []  # Webhooks 1.0 alerts / pings carry no route facts
        event_type = str(payload.get("eventType") or headers.get("x-samsara-event-type", ""))
        data: dict[str, Any] = payload["data"]
        event_id = str(payload.get("eventId") or "")
        # The best time the message has: the data's own, the event's, then the signed send time.
        sent = parse_time(headers.get("x-samsara-timestamp"), tz)
        when = parse_time(data.get("time") or payload.get("eventTime"), tz) or sent
        route = data.get("route") or {}
        if event_type == "RouteStopArrival":
            stop = data.get("routeStopDetails") or {}
            return [
                NormalizedEvent(
                    reference=str(stop.get("id", "")),
                    alt_references=_ids(stop),
                    group_reference=str(route.get("id", "")),
                    status=STATUS_MAP[event_type],
                    raw_status=event_type,
                    occurred_at=parse_time(stop.get("actualArrivalTime"), tz) or when,
                    event_id=event_id,
                )
            ]
        if event_type == "RouteStopDeparture":
            return [
                NormalizedEvent(
                    reference=str(s.get("id", "")),
                    alt_references=_ids(s),
                    group_reference=str(route.get("id", "")),
                    kind=EventKind.ETA,
                    raw_status=f"{event_type}:en route",
                    occurred_at=when,
                    eta=parse_time(s.get("eta"), tz),
                    event_id=f"{event_id}:{s.get('id')}" if event_id else "",
                )
                for s in route.get("stops") or []
                if s.get("state") == "en route" and s.get("eta")
            ]
        if event_type == "GeofenceExit":
            # Vehicle-level: the route's jobs when the event names one, else the vehicle's.
            group = str(route.get("id") or "")
            vehicle = str((data.get("vehicle") or {}).get("id") or "")
            if not group and not vehicle:
                return []
            return [
                NormalizedEvent(
                    reference=group or vehicle,
                    group_reference=group,
                    vehicle_reference=vehicle,
                    applies_to_group=True,
                    status=STATUS_MAP[event_type],
                    raw_status=event_type,
                    occurred_at=when,
                    event_id=event_id,
                )
            ]
        if event_type == "DocumentSubmitted":
            return _document(data.get("document") or {}, event_id, when, tz)
        return []


def _document(
    doc: Mapping[str, Any], event_id: str, when: datetime | None, tz: tzinfo
) -> list[NormalizedEvent]:
    stop = doc.get("routeStop") or {}
    if not stop.get("id"):
        return []  # fuel receipts, DVIR photos...: not about a delivery
    outcome, signature, photos, signer = "", "", [], ""
    for item in doc.get("fields") or []:
        value = item.get("value") or {}
        for choice in value.get("multipleChoiceValue") or []:
            if choice.get("selected") and not outcome:
                outcome = str(choice.get("value", ""))
        sig = value.get("signatureValue") or {}
        signature, signer = signature or sig.get("url", ""), signer or _first_name(sig.get("name"))
        photos += [p["url"] for p in value.get("photoValue") or [] if p.get("url")]
    text = outcome.lower()
    if any(word in text for word in _FAILED_WORDS):
        key = "not_delivered"
    elif "deliver" in text or (not text and signature):
        key = "delivered"
    else:
        return []
    reason = next((r for word, r in OUTCOME_REASONS if word in text), Reason.UNKNOWN)
    proof = {"signature_url": signature, "photo_urls": photos, "recipient_name": signer}
    proof = {k: v for k, v in proof.items() if v and (key == "delivered" or k == "photo_urls")}
    return [
        NormalizedEvent(
            reference=str(stop["id"]),
            alt_references=_ids(stop),
            group_reference=str((doc.get("route") or {}).get("id", "")),
            status=STATUS_MAP[key],
            reason=reason if key == "not_delivered" else None,
            raw_status=f"DocumentSubmitted:{outcome}",
            occurred_at=parse_time(doc.get("createdAtTime"), tz) or when,
            event_id=event_id,
            proof=proof or None,
            note=str(doc.get("notes") or ""),
        )
    ]
