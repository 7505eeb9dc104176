"""Stuart: webhook secret is the Authorization header value set in Stuart ("Bearer <token>" or the token)."""

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
    VerificationError,
    load_json,
    parse_coordinates,
    parse_time,
    verify_any_secret,
)
from tracking.statuses import SUB_STATUS_AT_PICKUP

# Delivery statuses (the courier's progress) and job statuses (the booking's life) share one map.
STATUS_MAP: dict[str, Status] = {
    **dict.fromkeys(["pending", "new", "scheduled", "searching"], Status.INFO_RECEIVED),
    **dict.fromkeys(["picking", "almost_picking", "waiting_at_pickup", "in_progress"], Status.ASSIGNED),
    "delivering": Status.OUT_FOR_DELIVERY,
    **dict.fromkeys(["almost_delivering", "waiting_at_dropoff"], Status.ARRIVING),
    **dict.fromkeys(["delivered", "finished"], Status.DELIVERED),
    **dict.fromkeys(["canceled", "cancelled", "expired", "voided"], Status.CANCELLED),
}
_JOB_TERMINAL = {"finished", "canceled", "cancelled", "expired", "voided"}
_DONE = {Status.DELIVERED, Status.CANCELLED}
_REASON_KEYS: dict[str, Reason] = {
    **dict.fromkeys(["address_error", "wrong_address"], Reason.ADDRESS_NOT_FOUND),
    **dict.fromkeys(["customer_not_available", "recipient_not_available"], Reason.RECIPIENT_NOT_HOME),
    "customer_refused": Reason.REFUSED,
    "package_damaged": Reason.DAMAGED,
    "package_lost": Reason.LOST,
    "no_supply": Reason.NO_COURIER,
    "courier_issue": Reason.VEHICLE_ISSUE,
    "customer_cancellation_requested": Reason.CANCELLED_BY_CUSTOMER,
}
_CANCELED_BY = {"client": Reason.CANCELLED_BY_MERCHANT, "customer": Reason.CANCELLED_BY_CUSTOMER}
_SCHEMES = {"bearer", "token", "basic"}


def _bare(value: str) -> str:
    parts = value.strip().split(None, 1)
    if len(parts) == 2 and parts[0].lower() in _SCHEMES:
        return parts[1].strip()
    return value.strip()


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _id(value: Any) -> str:
    return "" if value is None else str(value)


def _reason(status: str, cancellation: Mapping[str, Any]) -> str | None:
    if STATUS_MAP.get(status) is not Status.CANCELLED:
        return None
    if status == "expired":
        return Reason.NO_COURIER
    key = str(cancellation.get("reasonKey") or cancellation.get("reason_key") or "")
    by = str(cancellation.get("canceledBy") or cancellation.get("canceled_by") or "")
    return _REASON_KEYS.get(key) or _CANCELED_BY.get(by) or Reason.UNKNOWN


def _proof(proof: Mapping[str, Any]) -> dict[str, Any] | None:
    name = str(proof.get("signatureName") or proof.get("recipientName") or "").strip()
    mapped = {
        "signature_url": proof.get("signatureUrl") or proof.get("signature_url"),
        "photo_urls": [u for u in (proof.get("photoUrl") or proof.get("photo_url"),) if u],
        "recipient_name": name.split(" ")[0] if name else "",
    }
    return {k: v for k, v in mapped.items() if v} or None


class StuartAdapter(Adapter):
    name = "stuart"

    def verify(self, request: InboundRequest, secrets: Sequence[str]) -> None:
        header = _bare(request.headers.get("authorization", ""))
        if not header or header.lower() in _SCHEMES:
            raise VerificationError("missing Authorization header")
        verify_any_secret(
            header,
            secrets,
            lambda secret: _bare(secret) if _bare(secret).lower() not in _SCHEMES else None,
            what="Authorization header",
        )

    def parse(self, body: bytes, *, headers: Mapping[str, str], tz: tzinfo) -> list[NormalizedEvent]:
        payload = load_json(body)
        if not isinstance(payload, Mapping) or not isinstance(payload.get("data"), Mapping):
            raise PartnerError("Stuart webhook without a data object", permanent=True)
        topic, data = payload.get("event"), payload["data"]
        if topic == "driver":
            return self._driver(data)
        if topic == "delivery":
            job = _obj(data.get("job"))
            job_ref = str(job.get("jobReference") or "")
            return [self._event(_id(job.get("id")), job_ref, data, str(data.get("status")), None, tz)]
        if topic != "job":
            return []
        job_id, job_status = _id(data.get("id")), str(data.get("status"))
        deliveries = [d for d in data.get("deliveries") or [] if isinstance(d, Mapping)]
        deliveries = deliveries or [_obj(data.get("currentDelivery"))]
        ended = job_status in _JOB_TERMINAL
        job_time = parse_time(data.get("endedAt") if ended else data.get("createdAt"), tz)
        fallback = job_time if ended or job_status in {"new", "searching", "scheduled"} else None
        cancel = _obj(data.get("cancellation")) or None
        # A multi-drop job's jobReference names no single shipment.
        job_ref = str(data.get("jobReference") or "") if len(deliveries) == 1 else ""
        events = []
        for delivery in deliveries:
            own = str(delivery.get("status") or "")
            # A job's end (finished / canceled / expired) speaks for its deliveries unless they ended first.
            status = job_status if not own or (ended and STATUS_MAP.get(own) not in _DONE) else own
            events.append(self._event(job_id, job_ref, delivery, status, fallback, tz, cancel))
        return events

    def _event(
        self,
        job_id: str,
        job_ref: str,
        delivery: Mapping[str, Any],
        status: str,
        fallback: datetime | None,
        tz: tzinfo,
        cancellation: Mapping[str, Any] | None = None,
    ) -> NormalizedEvent:
        canonical = STATUS_MAP.get(status)
        if canonical is None:
            raise PartnerError(f"unknown Stuart status {status!r}", permanent=True)
        stamp = {"delivered": "deliveredAt", "delivering": "pickedAt"}.get(status, "")
        cancel = cancellation or _obj(delivery.get("cancellation"))
        alts = [_id(delivery.get("id")), str(delivery.get("clientReference") or ""), job_ref]
        return NormalizedEvent(
            reference=job_id or alts[0],
            status=canonical,
            reason=_reason(status, cancel),
            sub_status=SUB_STATUS_AT_PICKUP if status == "waiting_at_pickup" else "",
            raw_status=status,
            occurred_at=parse_time(delivery.get(stamp), tz) or fallback,
            alt_references=tuple(dict.fromkeys(a for a in alts if a and a != job_id)),
            eta=parse_time(delivery.get("etaToDestination"), tz) if canonical not in _DONE else None,
            proof=_proof(_obj(delivery.get("proof"))) if canonical is Status.DELIVERED else None,
            note=str(cancel.get("comment") or ""),
        )

    def _driver(self, driver: Mapping[str, Any]) -> list[NormalizedEvent]:
        job = _obj(driver.get("job"))
        coords = parse_coordinates({"lat": driver.get("latitude"), "lng": driver.get("longitude")})
        if not job.get("id") or coords is None:
            return []
        delivery_id = _id(job.get("currentDeliveryId"))
        return [
            NormalizedEvent(
                reference=_id(job["id"]),
                kind=EventKind.LOCATION,
                alt_references=(delivery_id,) if delivery_id else (),
                latitude=coords[0],
                longitude=coords[1],
            )
        ]
