"""Onfleet webhooks; webhook secret: the hex signing secret Onfleet shows under Settings > API & Webhooks."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta, tzinfo
from typing import Any

from partners.adapters.base import (
    Adapter,
    EventKind,
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

# Trigger names (a dropoff task) -> canonical status. taskEta is an ETA, not a status.
STATUS_MAP: dict[str, str] = {
    "taskCreated": Status.INFO_RECEIVED,
    "taskCloned": Status.INFO_RECEIVED,
    "taskUnassigned": Status.INFO_RECEIVED,
    "taskAssigned": Status.ASSIGNED,
    "taskStarted": Status.OUT_FOR_DELIVERY,
    "taskArrival": Status.ARRIVING,
    "taskCompleted": Status.DELIVERED,
    "taskFailed": Status.ATTEMPT_FAILED,
    "taskDeleted": Status.CANCELLED,
}
# A pickup task (pickupTask=true) reports the collection leg of the job.
PICKUP_STATUS_MAP: dict[str, str] = {
    "taskStarted": Status.ASSIGNED,
    "taskArrival": Status.ASSIGNED,
    "taskCompleted": Status.PICKED_UP,
    "taskFailed": Status.EXCEPTION,
}
REASON_MAP: dict[str, str] = {
    "NOBODY": Reason.RECIPIENT_NOT_HOME,
    "CLOSED": Reason.ACCESS_RESTRICTED,
    "WRONG_ADDRESS": Reason.ADDRESS_NOT_FOUND,
    "REFUSED": Reason.REFUSED,
    "DAMAGED": Reason.DAMAGED,
    "MANAGER_OVERRIDE": Reason.UNKNOWN,
    "OTHER": Reason.UNKNOWN,
}
_MERCHANT_METADATA = re.compile(r"ref|order|external|merchant", re.IGNORECASE)
_CDN = "https://d15p8tr8p0vffz.cloudfront.net"


class OnfleetAdapter(Adapter):
    name = "onfleet"

    def challenge(self, request: InboundRequest) -> str | None:
        if request.method.upper() == "GET" and "check" in request.query:
            return request.query["check"]
        return None

    def verify(self, request: InboundRequest, secrets: Sequence[str]) -> None:
        received = require_header(request, "X-Onfleet-Signature").lower()

        def expected(secret: str) -> str | None:
            try:
                key = bytes.fromhex(secret.strip())
            except ValueError:
                return None
            return hmac_digest(key, request.body, "sha512").hex()

        verify_any_secret(received, secrets, expected, what="X-Onfleet-Signature")

    def parse(self, body: bytes, *, headers: Mapping[str, str], tz: tzinfo) -> list[NormalizedEvent]:
        payload = load_json(body)
        if not isinstance(payload, dict):
            raise PartnerError("Onfleet payload is not an object", permanent=True)
        trigger = str(payload.get("triggerName") or "")
        task = (payload.get("data") or {}).get("task") or {}
        reference = str(task.get("id") or payload.get("taskId") or "")
        if not reference or not trigger.startswith("task"):
            return []  # worker, SMS and batch-job triggers concern no job
        sent_at = parse_time(payload.get("time"), tz)
        common: dict[str, Any] = {
            "reference": reference,
            "alt_references": _alt_references(task),
            "raw_status": trigger,
            "occurred_at": sent_at,
        }
        if trigger in ("taskEta", "taskDelayed"):
            eta = parse_time(task.get("estimatedArrivalTime") or task.get("estimatedCompletionTime"), tz)
            if trigger == "taskEta" and sent_at and payload.get("etaSeconds") is not None:
                eta = sent_at + timedelta(seconds=float(payload["etaSeconds"]))
            return [NormalizedEvent(kind=EventKind.ETA, eta=eta, **common)] if eta else []
        pickup = bool(task.get("pickupTask"))
        status = (PICKUP_STATUS_MAP.get(trigger) if pickup else None) or STATUS_MAP.get(trigger)
        if status is None:
            return []  # taskUpdated and other bookkeeping triggers
        details = task.get("completionDetails") or {}
        if trigger == "taskCompleted" and details.get("success") is False:
            status = PICKUP_STATUS_MAP["taskFailed"] if pickup else Status.ATTEMPT_FAILED
        extra: dict[str, Any] = {"eta": parse_time(task.get("estimatedArrivalTime"), tz)}
        if trigger == "taskArrival" and pickup:
            extra["sub_status"] = "at_pickup"
        if trigger in ("taskCompleted", "taskFailed"):
            common["occurred_at"] = parse_time(details.get("time"), tz) or sent_at
            extra["eta"] = None
            point = parse_coordinates(details.get("lastLocation"), order="lnglat")
            if point:
                extra["latitude"], extra["longitude"] = point
            if status in (Status.DELIVERED, Status.PICKED_UP):
                extra["proof"] = _proof(details)
            else:
                extra["reason"] = REASON_MAP.get(str(details.get("failureReason")), Reason.UNKNOWN)
                extra["note"] = str(details.get("failureNotes") or "")
        if trigger == "taskDeleted":
            extra["reason"] = Reason.CANCELLED_BY_MERCHANT
        return [NormalizedEvent(status=status, **common, **extra)]


def _alt_references(task: Mapping[str, Any]) -> tuple[str, ...]:
    refs: list[str] = []
    if task.get("sourceTaskId"):  # a clone (re-delivery) points at the task it was cloned from
        refs.append(str(task["sourceTaskId"]))
    for item in task.get("metadata") or []:
        value = item.get("value")
        usable = isinstance(value, str | int) and not isinstance(value, bool) and value != ""
        if usable and _MERCHANT_METADATA.search(str(item.get("name") or "")):
            refs.append(str(value))
    if task.get("shortId"):
        refs.append(str(task["shortId"]))
    return tuple(dict.fromkeys(refs))


def _proof(details: Mapping[str, Any]) -> dict[str, Any] | None:
    photos = list(details.get("photoUploadIds") or [])
    if details.get("photoUploadId") and details["photoUploadId"] not in photos:
        photos.insert(0, details["photoUploadId"])
    proof: dict[str, Any] = {}
    if details.get("signatureUploadId"):
        proof["signature_url"] = f"{_CDN}/{details['signatureUploadId']}/282x.png"
    if photos:
        proof["photo_urls"] = [f"{_CDN}/{photo}/800x.png" for photo in photos]
    if details.get("signatureText"):
        proof["recipient_name"] = str(details["signatureText"]).split()[0]
    return proof or None
