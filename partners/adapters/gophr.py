"""Gophr: webhook secret is the account API key Gophr sends in its API-KEY header (e.g. "sand-…")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

from partners.adapters.base import (
    Adapter,
    EventKind,
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
from tracking.statuses import SUB_STATUS_AT_PICKUP

STATUS_MAP: dict[str, Status] = {
    "NEW": Status.INFO_RECEIVED,
    "CONFIRMED_BY_CUSTOMER": Status.INFO_RECEIVED,
    "ACCEPTED_BY_COURIER": Status.ASSIGNED,
    "AT_PICKUP": Status.ASSIGNED,
    "EN_ROUTE": Status.OUT_FOR_DELIVERY,  # follows AT_PICKUP: Gophr has no separate "collected" status
    "AT_DELIVERY": Status.ARRIVING,
    "TAKING_SIGNATURE": Status.ARRIVING,
    "DELIVERED": Status.DELIVERED,
    "CANCELED_BY_CUSTOMER": Status.CANCELLED,
    "CANCELED": Status.CANCELLED,
    "CANCELLED": Status.CANCELLED,
}
# A return leg (a linked delivery Gophr generates back to the sender) moves the original shipment.
RETURN_STATUS_MAP: dict[str, Status] = {
    **dict.fromkeys(["NEW", "CONFIRMED_BY_CUSTOMER", "ACCEPTED_BY_COURIER", "AT_PICKUP"], Status.RETURNING),
    **dict.fromkeys(["EN_ROUTE", "AT_DELIVERY", "TAKING_SIGNATURE"], Status.RETURNING),
    "DELIVERED": Status.RETURNED,
    **dict.fromkeys(["CANCELED_BY_CUSTOMER", "CANCELED", "CANCELLED"], Status.EXCEPTION),
}
_REF_KEYS = ("ref", "order", "external")


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _items(value: Any) -> list[Mapping[str, Any]]:
    """Proof fields come as an array of {type, url} or as one such object."""
    if isinstance(value, Mapping):
        return [value]
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _coordinates(payload: Mapping[str, Any]) -> tuple[float, float] | None:
    lat, lng = payload.get("courier_location_lat"), payload.get("courier_location_lng")
    if lat in (None, "") or lng in (None, ""):
        return None
    coords = parse_coordinates([lat, lng])
    return None if coords is None or coords == (0.0, 0.0) else coords


class GophrAdapter(Adapter):
    name = "gophr"

    def verify(self, request: InboundRequest, secrets: Sequence[str]) -> None:
        received = require_header(request, "API-KEY")
        verify_any_secret(received, secrets, str.strip, what="API-KEY header")

    def parse(self, body: bytes, *, headers: Mapping[str, str], tz: tzinfo) -> list[NormalizedEvent]:
        payload = load_json(body)
        if not isinstance(payload, Mapping) or not _text(payload.get("delivery_id")):
            raise PartnerError("Gophr webhook without a delivery_id", permanent=True)
        reference, alts = _text(payload["delivery_id"]), self._alt_references(payload)
        coords = _coordinates(payload)
        eta = parse_time(payload.get("delivery_eta"), tz)
        if "status" not in payload:  # the ETA webhook: no status, sent every minute
            events = []
            if coords:
                events.append(self._base(reference, alts, kind=EventKind.LOCATION, coords=coords))
            if eta:
                events.append(self._base(reference, alts, kind=EventKind.ETA, eta=eta))
            return events
        is_return = "RETURN" in _text(payload.get("leg_type")).upper()
        statuses = RETURN_STATUS_MAP if is_return else STATUS_MAP
        current = _text(payload.get("status"))
        if current not in statuses:
            raise PartnerError(f"unknown Gophr status {current!r}", permanent=True)
        # events[] is the cumulative history: one event per entry, with an id derived from the entry.
        history: list[tuple[str, datetime | None, str]] = []
        for entry in payload.get("events") or []:
            status = _text(entry.get("status")) if isinstance(entry, Mapping) else ""
            if status in statuses:
                history.append(
                    (status, parse_time(entry.get("timestamp"), tz), _text(entry.get("timestamp")))
                )
        latest = max((i for i, h in enumerate(history) if h[0] == current), default=None)
        if latest is None:
            history.append((current, None, ""))
            latest = len(history) - 1
        events = []
        for index, (status, when, stamp) in enumerate(history):
            is_current = index == latest
            canonical = statuses[status]
            events.append(
                self._base(
                    reference,
                    alts,
                    status=canonical,
                    raw_status=status,
                    occurred_at=when,
                    event_id=f"{reference}:{status}:{stamp}" if stamp else "",
                    sub_status=SUB_STATUS_AT_PICKUP if status == "AT_PICKUP" and not is_return else "",
                    reason=self._reason(status) if canonical is Status.CANCELLED else None,
                    coords=coords if is_current else None,
                    eta=eta if is_current and canonical not in (Status.DELIVERED, Status.CANCELLED) else None,
                    proof=self._proof(payload) if is_current and canonical is Status.DELIVERED else None,
                    note=_text(payload.get("cancellation_comment")) if is_current else "",
                )
            )
        return events

    @staticmethod
    def _base(
        reference: str, alts: tuple[str, ...], *, coords: tuple[float, float] | None = None, **fields: Any
    ) -> NormalizedEvent:
        lat, lng = coords if coords else (None, None)
        return NormalizedEvent(
            reference=reference, alt_references=alts, latitude=lat, longitude=lng, **fields
        )

    @staticmethod
    def _reason(status: str) -> str:
        return Reason.CANCELLED_BY_MERCHANT if status == "CANCELED_BY_CUSTOMER" else Reason.UNKNOWN

    @staticmethod
    def _alt_references(payload: Mapping[str, Any]) -> tuple[str, ...]:
        alts = [_text(payload.get("external_id"))]
        linked = payload.get("linked_delivery")
        if isinstance(linked, Mapping):
            alts += [_text(linked.get(k)) for k in ("delivery_id", "id", "external_id")]
        elif linked:
            alts.append(_text(linked))
        for item in _items(payload.get("meta_data")):
            if any(k in _text(item.get("key")).lower() for k in _REF_KEYS):
                alts.append(_text(item.get("value")))
        own = _text(payload.get("delivery_id"))
        return tuple(dict.fromkeys(a for a in alts if a and a != own))

    @staticmethod
    def _proof(payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
        photos, signature = [], ""
        for item in _items(payload.get("proof_of_delivery")):
            url, kind = _text(item.get("url")), _text(item.get("type")).lower()
            if url and "signature" in kind:
                signature = signature or url
            elif url:
                photos.append(url)
        proof: dict[str, Any] = {"photo_urls": photos} if photos else {}
        if signature:
            proof["signature_url"] = signature
        return proof or None
