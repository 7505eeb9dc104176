"""Wolt Drive: webhook secret is the client_secret registered with the webhook (raw string, HS256 key)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

import jwt

from partners.adapters.base import (
    Adapter,
    EventKind,
    InboundRequest,
    NormalizedEvent,
    PartnerError,
    Reason,
    Status,
    VerificationError,
    load_json,
    parse_coordinates,
    parse_time,
)
from tracking.statuses import SUB_STATUS_AT_PICKUP

STATUS_MAP: dict[str, Status] = {
    "order.received": Status.INFO_RECEIVED,
    "order.rejected": Status.CANCELLED,
    "order.pickup_started": Status.ASSIGNED,
    "order.pickup_arrival": Status.ASSIGNED,
    "order.picked_up": Status.PICKED_UP,
    "order.dropoff_started": Status.OUT_FOR_DELIVERY,
    "order.dropoff_arrival": Status.ARRIVING,
    "order.dropoff_completed": Status.DELIVERED,
    "order.delivered": Status.DELIVERED,
    "order.customer_no_show": Status.ATTEMPT_FAILED,
}
_ETA_ONLY = {"order.pickup_eta_updated", "order.dropoff_eta_updated"}
# The handshake event carries a PIN for the recipient: nothing Baton tracks, and not to be stored in events.
_IGNORED = {"order.handshake_delivery"}
_REASONS: dict[str, Reason] = {
    "order.customer_no_show": Reason.RECIPIENT_NOT_HOME,
    "order.rejected": Reason.UNKNOWN,
}
_CLOCK_SKEW = 300


def _token(body: bytes) -> str:
    payload = load_json(body)
    token = payload.get("token") if isinstance(payload, Mapping) else None
    if not isinstance(token, str) or not token:
        raise PartnerError('Wolt Drive body is not {"token": "<JWT>"}', permanent=True)
    return token


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _dropoff_eta(details: Mapping[str, Any], tz: tzinfo) -> datetime | None:
    eta = _obj(details.get("dropoff")).get("eta")
    if isinstance(eta, Mapping):  # a window {min, max}: the promise Baton keeps is its late end
        return parse_time(eta.get("max") or eta.get("min"), tz)
    return parse_time(eta, tz)


class WoltDriveAdapter(Adapter):
    name = "wolt_drive"

    def verify(self, request: InboundRequest, secrets: Sequence[str]) -> None:
        try:
            token = _token(request.body)
        except PartnerError as exc:
            raise VerificationError(exc.message) from exc
        for secret in secrets:
            if not secret:
                continue
            try:
                claims = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_exp": False})
            except jwt.InvalidSignatureError:
                continue
            except jwt.InvalidTokenError as exc:
                raise VerificationError(f"malformed Wolt Drive token: {exc}") from exc
            expires = claims.get("exp")
            if isinstance(expires, int | float) and request.now.timestamp() > expires + _CLOCK_SKEW:
                raise VerificationError("Wolt Drive token has expired")
            return
        raise VerificationError("Wolt Drive token is not signed with the registered client_secret")

    def parse(self, body: bytes, *, headers: Mapping[str, str], tz: tzinfo) -> list[NormalizedEvent]:
        try:
            claims = jwt.decode(_token(body), options={"verify_signature": False})
        except jwt.InvalidTokenError as exc:
            raise PartnerError(f"malformed Wolt Drive token: {exc}", permanent=True) from exc
        kind, details = _text(claims.get("type")), claims.get("details")
        if not isinstance(details, Mapping) or not _text(details.get("id")):
            raise PartnerError(f"Wolt Drive event {kind!r} has no details.id", permanent=True)
        if kind in _IGNORED:
            return []
        reference = _text(details["id"])
        alts = [
            _text(details.get(k))
            for k in (
                "wolt_order_reference_id",
                "tracking_reference",
                "tracking_id",
                "merchant_order_reference_id",
            )
        ]
        common: dict[str, Any] = {
            "reference": reference,
            "alt_references": tuple(dict.fromkeys(a for a in alts if a and a != reference)),
            "occurred_at": parse_time(claims.get("dispatched_at"), tz),
            "raw_status": kind,
        }
        if kind == "order.location_updated":
            coords = parse_coordinates(details.get("courier_location"))
            if coords is None:
                return []
            return [
                NormalizedEvent(kind=EventKind.LOCATION, latitude=coords[0], longitude=coords[1], **common)
            ]
        eta = _dropoff_eta(details, tz)
        if kind in _ETA_ONLY:
            return [NormalizedEvent(kind=EventKind.ETA, eta=eta, **common)] if eta else []
        status = STATUS_MAP.get(kind)
        if status is None:
            raise PartnerError(f"unknown Wolt Drive event type {kind!r}", permanent=True)
        if status is Status.DELIVERED:
            completed = _obj(details.get("dropoff")).get("completed_at")
            common["occurred_at"] = parse_time(completed, tz) or common["occurred_at"]
        return [
            NormalizedEvent(
                status=status,
                reason=_REASONS.get(kind),
                sub_status=SUB_STATUS_AT_PICKUP if kind == "order.pickup_arrival" else "",
                eta=eta if status not in (Status.DELIVERED, Status.CANCELLED) else None,
                note=_text(details.get("purchase_rejected_reason") or details.get("rejection_reason")),
                **common,
            )
        ]
