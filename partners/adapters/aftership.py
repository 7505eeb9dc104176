"""AfterShip Tracking: webhook secret is the webhook secret AfterShip shows in its webhook settings."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from datetime import tzinfo
from typing import Any
from urllib.parse import quote

from partners.adapters.base import (
    Adapter,
    HttpClient,
    InboundRequest,
    NormalizedEvent,
    PartnerError,
    Reason,
    Status,
    hmac_digest,
    load_json,
    parse_coordinates,
    parse_time,
    require_header,
    verify_any_secret,
)

# Checkpoint `tag` to canonical; Pending / Expired say nothing about the parcel.
STATUS_MAP: dict[str, str | None] = {
    "Pending": None,
    "InfoReceived": Status.INFO_RECEIVED,
    "InTransit": Status.IN_TRANSIT,
    "OutForDelivery": Status.OUT_FOR_DELIVERY,
    "AttemptFail": Status.ATTEMPT_FAILED,
    "Delivered": Status.DELIVERED,
    "AvailableForPickup": Status.AVAILABLE_FOR_PICKUP,
    "Exception": Status.EXCEPTION,
    "Expired": None,
}
# Sub-statuses (subtags) that say more than their tag.
SUBTAG_STATUS: dict[str, str] = {
    "Exception_010": Status.RETURNING,
    "Exception_011": Status.RETURNED,
    "Exception_020": Status.CANCELLED,
}
SUBTAG_REASON: dict[str, str] = {
    "AttemptFail_002": Reason.RECIPIENT_NOT_HOME,
    "AttemptFail_003": Reason.ACCESS_RESTRICTED,
    "Exception_002": Reason.ADDRESS_NOT_FOUND,
    "Exception_003": Reason.REFUSED,
    "Exception_007": Reason.ADDRESS_NOT_FOUND,
    "Exception_012": Reason.DAMAGED,
    "Exception_013": Reason.LOST,
    "Exception_017": Reason.WEATHER,
}
# Generic subtags (AttemptFail_001, Exception_001): read the carrier's message.
MESSAGE_REASONS: tuple[tuple[str, str], ...] = (
    ("not in", Reason.RECIPIENT_NOT_HOME),
    ("not home", Reason.RECIPIENT_NOT_HOME),
    ("no one", Reason.RECIPIENT_NOT_HOME),
    ("refused", Reason.REFUSED),
    ("address", Reason.ADDRESS_NOT_FOUND),
    ("access", Reason.ACCESS_RESTRICTED),
    ("damaged", Reason.DAMAGED),
    ("weather", Reason.WEATHER),
)
_REASONED = {Status.ATTEMPT_FAILED, Status.EXCEPTION, Status.RETURNING, Status.CANCELLED}
DEFAULT_BASE_URL = "https://api.aftership.com/tracking/2025-01"


def _tracking(container: Any) -> dict[str, Any] | None:
    """The tracking object, whether wrapped in {"tracking": ...} (v4) or not (versioned API, webhook msg)."""
    inner = container.get("tracking") if isinstance(container, dict) else None
    return inner if isinstance(inner, dict) else container if isinstance(container, dict) else None


def _reason(subtag: str, message: str) -> str:
    text = message.lower()
    return SUBTAG_REASON.get(subtag) or next((r for w, r in MESSAGE_REASONS if w in text), Reason.UNKNOWN)


def _checkpoint_id(tracking_id: str, cp: Mapping[str, Any]) -> str:
    keys = ("slug", "checkpoint_time", "tag", "subtag", "message", "location", "raw_tag")
    fact = "|".join([tracking_id, *(str(cp.get(k) or "") for k in keys)])
    return f"{tracking_id}:{hashlib.sha256(fact.encode()).hexdigest()[:20]}"


def parse_tracking(tracking: Mapping[str, Any], tz: tzinfo) -> list[NormalizedEvent]:
    """One event per checkpoint (the array is cumulative), with ids derived from the checkpoint."""
    tracking_id = str(tracking.get("id") or "")
    candidates = [tracking.get(k) for k in ("tracking_number", "legacy_id", "order_id", "order_number")]
    candidates += list((tracking.get("custom_fields") or {}).values())
    alts = tuple(dict.fromkeys(str(c) for c in candidates if c and isinstance(c, str | int)))
    reference = tracking_id or (alts[0] if alts else "")
    alts = tuple(a for a in alts if a != reference)
    signer = str(tracking.get("signed_by") or "").split()
    events: list[NormalizedEvent] = []
    for cp in tracking.get("checkpoints") or []:
        tag, subtag, message = (
            str(cp.get("tag") or ""),
            str(cp.get("subtag") or ""),
            str(cp.get("message") or ""),
        )
        status = SUBTAG_STATUS.get(subtag) or STATUS_MAP.get(tag)
        if status is None:
            continue
        point = parse_coordinates(cp.get("coordinate")) or parse_coordinates(cp.get("coordinates"))
        events.append(
            NormalizedEvent(
                reference=reference,
                alt_references=alts,
                status=status,
                reason=_reason(subtag, message) if status in _REASONED else None,
                sub_status=subtag,
                raw_status=f"{tag}/{subtag}" if subtag else tag,
                occurred_at=parse_time(cp.get("checkpoint_time"), tz),
                event_id=_checkpoint_id(tracking_id, cp),
                latitude=point[0] if point else None,
                longitude=point[1] if point else None,
                proof={"recipient_name": signer[0]} if status == Status.DELIVERED and signer else None,
                note=message,
            )
        )
    return events


class AftershipAdapter(Adapter):
    name = "aftership"
    can_fetch = True

    def verify(self, request: InboundRequest, secrets: Sequence[str]) -> None:
        signature = require_header(request, "aftership-hmac-sha256")
        verify_any_secret(
            signature,
            secrets,
            lambda secret: base64.b64encode(hmac_digest(secret.encode(), request.body)).decode(),
            what="aftership-hmac-sha256",
        )

    def parse(self, body: bytes, *, headers: Mapping[str, str], tz: tzinfo) -> list[NormalizedEvent]:
        payload = load_json(body)
        if not isinstance(payload, dict):
            raise PartnerError("AfterShip webhook is not a JSON object", permanent=True)
        tracking = _tracking(payload.get("msg") or payload.get("data"))
        if payload.get("event", "tracking_update") != "tracking_update" or tracking is None:
            return []
        return parse_tracking(tracking, tz)

    def fetch(
        self, client: HttpClient, *, config: Mapping[str, Any], reference: str, tz: tzinfo
    ) -> list[NormalizedEvent]:
        api_key = str(config.get("api_key") or "")
        if not api_key:
            raise PartnerError("AfterShip config has no api_key", permanent=True)
        base = str(config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        headers = {"as-api-key": api_key, "aftership-api-key": api_key}
        if "/" in reference:  # "slug/tracking_number": the legacy lookup
            slug, number = reference.split("/", 1)
            url = f"{base}/trackings/{quote(slug)}/{quote(number, safe='')}"
        else:
            url = f"{base}/trackings/{quote(reference, safe='')}"
        answer = client.get_json(url, headers=headers)
        tracking = _tracking(answer.get("data") if isinstance(answer, dict) else None)
        if tracking is None:
            raise PartnerError(f"AfterShip answered without a tracking for {reference!r}")
        return parse_tracking(tracking, tz)
