"""EasyPost Trackers: webhook secret is the webhook_secret string set on the EasyPost webhook (HMAC key)."""

from __future__ import annotations

import base64
import hashlib
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import tzinfo
from typing import Any
from urllib.parse import quote

from partners.adapters.base import (
    Adapter,
    EventKind,
    HttpClient,
    InboundRequest,
    NormalizedEvent,
    PartnerError,
    Reason,
    Status,
    hmac_digest,
    load_json,
    parse_time,
    require_header,
    verify_any_secret,
)

# Tracker / TrackingDetail `status` to canonical; "unknown" entries are not facts.
STATUS_MAP: dict[str, str | None] = {
    "unknown": None,
    "pre_transit": Status.INFO_RECEIVED,
    "in_transit": Status.IN_TRANSIT,
    "out_for_delivery": Status.OUT_FOR_DELIVERY,
    "delivered": Status.DELIVERED,
    "available_for_pickup": Status.AVAILABLE_FOR_PICKUP,
    "return_to_sender": Status.RETURNING,
    "failure": Status.ATTEMPT_FAILED,
    "cancelled": Status.CANCELLED,
    "error": Status.EXCEPTION,
}
# `status_detail` values that say more than `status` does.
DETAIL_STATUS: dict[str, str] = {
    "cancelled": Status.CANCELLED,
    "return": Status.RETURNING,
    "lost": Status.EXCEPTION,
    "damaged": Status.EXCEPTION,
    "weather_delay": Status.EXCEPTION,
    "delayed": Status.EXCEPTION,
    "held": Status.EXCEPTION,
    "missorted": Status.EXCEPTION,
}
DETAIL_REASON: dict[str, str] = {
    "refused": Reason.REFUSED,
    "address_correction": Reason.ADDRESS_NOT_FOUND,
    "damaged": Reason.DAMAGED,
    "lost": Reason.LOST,
    "weather_delay": Reason.WEATHER,
    "cancelled": Reason.CANCELLED_BY_MERCHANT,
}
_REASONED = {Status.ATTEMPT_FAILED, Status.EXCEPTION, Status.CANCELLED, Status.RETURNING}
DEFAULT_BASE_URL = "https://api.easypost.com/v2"


def _entry_id(tracker_id: str, detail: Mapping[str, Any]) -> str:
    keys = ("datetime", "status", "status_detail", "message", "carrier_code")
    fact = "|".join([tracker_id, *(str(detail.get(k) or "") for k in keys)])
    return f"{tracker_id}:{hashlib.sha256(fact.encode()).hexdigest()[:20]}"


def parse_tracker(tracker: Mapping[str, Any], tz: tzinfo) -> list[NormalizedEvent]:
    """One event per tracking_details entry (the array is cumulative), plus the estimated delivery."""
    tracker_id = str(tracker.get("id") or "")
    alts = tuple(str(tracker[k]) for k in ("tracking_code", "shipment_id") if tracker.get(k))
    common: dict[str, Any] = {"reference": tracker_id or (alts[0] if alts else ""), "alt_references": alts}
    events: list[NormalizedEvent] = []
    eta = parse_time(tracker.get("est_delivery_date"), tz)
    if eta and tracker.get("status") not in ("delivered", "return_to_sender", "cancelled"):
        events.append(
            NormalizedEvent(kind=EventKind.ETA, eta=eta, event_id=f"{tracker_id}:eta:{eta}", **common)
        )
    signer = str(tracker.get("signed_by") or "").split()
    for detail in tracker.get("tracking_details") or []:
        raw, sub = str(detail.get("status") or ""), str(detail.get("status_detail") or "")
        status = DETAIL_STATUS.get(sub) or STATUS_MAP.get(raw)
        if status is None:
            continue
        events.append(
            NormalizedEvent(
                status=status,
                reason=DETAIL_REASON.get(sub, Reason.UNKNOWN) if status in _REASONED else None,
                sub_status=sub,
                raw_status=f"{raw}/{sub}" if sub else raw,
                occurred_at=parse_time(detail.get("datetime"), tz),
                event_id=_entry_id(tracker_id, detail),
                proof={"recipient_name": signer[0]} if status == Status.DELIVERED and signer else None,
                note=str(detail.get("message") or ""),
                **common,
            )
        )
    return events


class EasypostAdapter(Adapter):
    name = "easypost"
    can_fetch = True

    def verify(self, request: InboundRequest, secrets: Sequence[str]) -> None:
        signature = require_header(request, "X-Hmac-Signature")

        def expected(secret: str) -> str:
            key = unicodedata.normalize("NFKD", secret).encode()
            return "hmac-sha256-hex=" + hmac_digest(key, request.body).hex()

        verify_any_secret(signature, secrets, expected, what="X-Hmac-Signature")

    def parse(self, body: bytes, *, headers: Mapping[str, str], tz: tzinfo) -> list[NormalizedEvent]:
        payload = load_json(body)
        if not isinstance(payload, dict):
            raise PartnerError("EasyPost event is not a JSON object", permanent=True)
        result = payload.get("result")
        if not str(payload.get("description", "")).startswith("tracker.") or not isinstance(result, dict):
            return []  # batch, shipment.invoice, refund...: nothing about a delivery
        return parse_tracker(result, tz)

    def fetch(
        self, client: HttpClient, *, config: Mapping[str, Any], reference: str, tz: tzinfo
    ) -> list[NormalizedEvent]:
        api_key = str(config.get("api_key") or "")
        if not api_key:
            raise PartnerError("EasyPost config has no api_key", permanent=True)
        base = str(config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        auth = {"Authorization": "Basic " + base64.b64encode(f"{api_key}:".encode()).decode()}
        if reference.startswith("trk_"):
            return parse_tracker(
                client.get_json(f"{base}/trackers/{quote(reference, safe='')}", headers=auth), tz
            )
        answer = client.get_json(f"{base}/trackers?tracking_code={quote(reference, safe='')}", headers=auth)
        trackers = answer.get("trackers") if isinstance(answer, dict) else None
        if not trackers:
            raise PartnerError(f"EasyPost has no tracker for {reference!r}")
        return parse_tracker(trackers[0], tz)
