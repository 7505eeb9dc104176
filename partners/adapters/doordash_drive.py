"""DoorDash Drive (v2) webhooks; webhook secret: the Authorization header value set in the Portal."""

from __future__ import annotations

import base64
import binascii
import contextlib
import time
from collections.abc import Mapping, Sequence
from datetime import tzinfo
from typing import Any
from urllib.parse import quote

import jwt

from partners.adapters.base import (
    Adapter,
    DeliveryUpdate,
    EventKind,
    HttpWriter,
    InboundRequest,
    NormalizedEvent,
    PartnerError,
    Reason,
    Status,
    load_json,
    parse_coordinates,
    parse_time,
    require_header,
    verify_any_secret,
)

# event_name -> canonical status (DoorDash signs nothing; the endpoint credential is the proof).
STATUS_MAP: dict[str, str] = {
    "DELIVERY_CREATED": Status.INFO_RECEIVED,
    "DASHER_CONFIRMED": Status.ASSIGNED,
    "DASHER_CONFIRMED_PICKUP_ARRIVAL": Status.ASSIGNED,
    "DASHER_PICKED_UP": Status.PICKED_UP,
    "DASHER_CONFIRMED_DROPOFF_ARRIVAL": Status.ARRIVING,
    "DASHER_DROPPED_OFF": Status.DELIVERED,
    "DELIVERY_CANCELLED": Status.CANCELLED,
    "DELIVERY_RETURN_INITIALIZED": Status.RETURNING,
    "DASHER_CONFIRMED_RETURN_ARRIVAL": Status.RETURNING,
    "DELIVERY_RETURNED": Status.RETURNED,
}
# Used only when a body carries no event_name.
DELIVERY_STATUS_MAP: dict[str, str] = {
    "created": Status.INFO_RECEIVED,
    "confirmed": Status.ASSIGNED,
    "enroute_to_pickup": Status.ASSIGNED,
    "arrived_at_pickup": Status.ASSIGNED,
    "picked_up": Status.PICKED_UP,
    "enroute_to_dropoff": Status.OUT_FOR_DELIVERY,
    "arrived_at_dropoff": Status.ARRIVING,
    "delivered": Status.DELIVERED,
    "enroute_to_return": Status.RETURNING,
    "arrived_at_return": Status.RETURNING,
    "returned": Status.RETURNED,
    "cancelled": Status.CANCELLED,
}
# Substrings of cancellation_reason, first match wins.
REASON_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("customer_unavailable", Reason.RECIPIENT_NOT_HOME),
    ("refused", Reason.REFUSED),
    ("address", Reason.ADDRESS_NOT_FOUND),
    ("access", Reason.ACCESS_RESTRICTED),
    ("damaged", Reason.DAMAGED),
    ("lost", Reason.LOST),
    ("never_received", Reason.LOST),
    ("failed_to_return", Reason.LOST),
    ("dasher", Reason.NO_COURIER),
    ("no_available", Reason.NO_COURIER),
    ("customer", Reason.CANCELLED_BY_CUSTOMER),
    ("creator", Reason.CANCELLED_BY_MERCHANT),
    ("merchant", Reason.CANCELLED_BY_MERCHANT),
    ("store", Reason.CANCELLED_BY_MERCHANT),
    ("item", Reason.CANCELLED_BY_MERCHANT),
)
_ACTUAL_TIME = {
    "DASHER_PICKED_UP": "pickup_time_actual",
    "DASHER_DROPPED_OFF": "dropoff_time_actual",
    "DELIVERY_RETURNED": "return_time_actual",
}


API_BASE = "https://openapi.doordash.com"
CREDENTIALS = ("developer_id", "key_id", "signing_secret")


class DoordashDriveAdapter(Adapter):
    name = "doordash_drive"

    def can_update(self, config: Mapping[str, Any], kind: str) -> bool:
        return kind == "instructions" and all(config.get(key) for key in CREDENTIALS)

    def update_delivery(
        self, client: HttpWriter, *, config: Mapping[str, Any], reference: str, update: DeliveryUpdate
    ) -> str:
        """Update Delivery (PATCH /drive/v2/deliveries/{external_delivery_id}): the Dasher's instructions."""
        if not self.can_update(config, update.kind):
            raise PartnerError(f"DoorDash Drive cannot take a {update.kind} update here", permanent=True)
        base = str(config.get("base_url") or API_BASE).rstrip("/")
        answer = client.send_json(
            "PATCH",
            f"{base}/drive/v2/deliveries/{quote(reference, safe='')}",
            body={"dropoff_instructions": update.instructions},
            headers={"Authorization": f"Bearer {access_token(config)}"},
        )
        if not isinstance(answer, dict) or str(answer.get("external_delivery_id", reference)) != reference:
            raise PartnerError("DoorDash answered the update with another delivery", permanent=True)
        return str(answer.get("support_reference") or "")

    def verify(self, request: InboundRequest, secrets: Sequence[str]) -> None:
        received = require_header(request, "Authorization")
        scheme, _, credential = received.partition(" ")
        credential = credential.strip()
        candidates = [received, credential] if credential else [received]
        if scheme.lower() == "basic" and credential:
            with contextlib.suppress(binascii.Error, UnicodeDecodeError):
                candidates.append(base64.b64decode(credential, validate=True).decode())
        verify_any_secret(candidates, secrets, str.strip, what="Authorization header")

    def parse(self, body: bytes, *, headers: Mapping[str, str], tz: tzinfo) -> list[NormalizedEvent]:
        payload = load_json(body)
        if not isinstance(payload, dict):
            raise PartnerError("DoorDash payload is not an object", permanent=True)
        reference = str(payload.get("external_delivery_id") or "")
        if not reference:
            raise PartnerError("DoorDash payload has no external_delivery_id", permanent=True)
        event_name = str(payload.get("event_name") or payload.get("event_type") or "").upper()
        point = parse_coordinates(payload.get("dasher_location"))
        if point is None and payload.get("dasher_location_lat") is not None:
            point = parse_coordinates([payload["dasher_location_lat"], payload.get("dasher_location_lng")])
        common: dict[str, Any] = {
            "reference": reference,
            "alt_references": tuple(str(payload[k]) for k in ("support_reference",) if payload.get(k)),
            "raw_status": event_name or str(payload.get("delivery_status") or ""),
            "occurred_at": parse_time(payload.get(_ACTUAL_TIME.get(event_name, "")), tz)
            or parse_time(payload.get("created_at") or payload.get("updated_at"), tz),
            "latitude": point[0] if point else None,
            "longitude": point[1] if point else None,
        }
        if event_name.startswith("DASHER_ENROUTE"):  # optional live-tracking pings
            return [NormalizedEvent(kind=EventKind.LOCATION, **common)] if point else []
        if event_name:
            status = STATUS_MAP.get(event_name)
        else:
            status = DELIVERY_STATUS_MAP.get(str(payload.get("delivery_status") or ""))
        if status is None:
            return []  # DELIVERY_BATCHED and other bookkeeping events
        extra: dict[str, Any] = {}
        if event_name == "DASHER_CONFIRMED_PICKUP_ARRIVAL" or payload.get("delivery_status") == (
            "arrived_at_pickup"
        ):
            extra["sub_status"] = "at_pickup"
        if status in (Status.ASSIGNED, Status.PICKED_UP, Status.OUT_FOR_DELIVERY, Status.ARRIVING):
            extra["eta"] = parse_time(payload.get("dropoff_time_estimated"), tz)
        if status == Status.DELIVERED:
            extra["proof"] = _proof(payload)
        cancellation = str(payload.get("cancellation_reason") or payload.get("reason") or "").lower()
        if status in (Status.CANCELLED, Status.RETURNING) and cancellation:
            extra["reason"] = next((r for k, r in REASON_KEYWORDS if k in cancellation), Reason.UNKNOWN)
        if cancellation == "failed_to_return":  # the goods are neither delivered nor back: not closed
            status = Status.EXCEPTION
        if status == Status.CANCELLED and "reason" not in extra:
            extra["reason"] = Reason.UNKNOWN
        return [NormalizedEvent(status=status, **common, **extra)]


def _proof(payload: Mapping[str, Any]) -> dict[str, Any] | None:
    proof: dict[str, Any] = {}
    if payload.get("dropoff_signature_image_url"):
        proof["signature_url"] = str(payload["dropoff_signature_image_url"])
    if payload.get("dropoff_verification_image_url"):
        proof["photo_urls"] = [str(payload["dropoff_verification_image_url"])]
    return proof or None


def access_token(config: Mapping[str, Any], *, now: float | None = None) -> str:
    """DoorDash's JWT: HS256 with the decoded signing secret, `dd-ver` header, five minutes."""
    issued = int(now if now is not None else time.time())
    secret = str(config["signing_secret"])
    key = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    claims = {
        "aud": "doordash",
        "iss": config["developer_id"],
        "kid": config["key_id"],
        "iat": issued,
        "exp": issued + 300,
    }
    return jwt.encode(claims, key, algorithm="HS256", headers={"dd-ver": "DD-JWT-V1"})
