"""Driver links: a contractor with no system reports on the jobs it holds from a phone, in a few taps.

A tap becomes a native partner event that goes through the same ingest path as the API: stored as
an inbound message first, then parsed, deduplicated and reconciled by the worker. The reference in
that event is always the custody's own, chosen here, never by the page, so a link can only ever
report on the jobs it was made for.
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from partners.adapters.native import InvalidEvent, parse_event
from partners.models import Custody, DriverLink, InboundMessage, Partner
from partners.services.inbound import record_inbound
from tracking.models import Activity
from tracking.outbox import queue_message
from tracking.services import record_activity
from tracking.statuses import TERMINAL_STATUSES, Reason, Status


@dataclass(frozen=True)
class DriverAction:
    label: str
    status: str | None  # None: a note, no status change
    done: str  # what the page says once it is recorded


# The buttons of the driver page, in the order a job goes.
DRIVER_ACTIONS: dict[str, DriverAction] = {
    "picked_up": DriverAction("Picked up", Status.PICKED_UP, "Marked as picked up"),
    "on_the_way": DriverAction("On the way", Status.OUT_FOR_DELIVERY, "Marked as on the way"),
    "arrived": DriverAction("Arrived", Status.ARRIVING, "Marked as arrived"),
    "delivered": DriverAction("Delivered", Status.DELIVERED, "Marked as delivered"),
    "failed": DriverAction("Could not deliver", Status.ATTEMPT_FAILED, "Failed attempt recorded"),
    "note": DriverAction("Send note", None, "Note sent"),
}
FAILURE_REASONS = [
    Reason.RECIPIENT_NOT_HOME,
    Reason.ADDRESS_NOT_FOUND,
    Reason.ACCESS_RESTRICTED,
    Reason.REFUSED,
    Reason.DAMAGED,
    Reason.VEHICLE_ISSUE,
    Reason.WEATHER,
    Reason.UNKNOWN,
]
MAX_IMAGE_BYTES = 8 * 1024 * 1024
MAX_IMAGE_SIDE = 1600


class LinkRefused(Exception):
    """The link cannot be used: `reason` is unknown, revoked or expired."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DriverReportError(Exception):
    """A report the page must refuse, with a message for the driver and the field at fault."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def hash_link_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def driver_link_url(token: str) -> str:
    return f"{settings.SITE_URL}/d/{token}"


def issue_driver_link(
    partner: Partner,
    *,
    custody: Custody | None = None,
    group_reference: str = "",
    contact: str = "",
    reason: str = "assigned",
    now: datetime | None = None,
) -> tuple[DriverLink, str]:
    """Make a link for one job (or a route) and send it to the contact; the token is returned once."""
    if custody is None and not group_reference:
        raise ValueError("a driver link needs a job or a route")
    now = now or timezone.now()
    token = secrets.token_urlsafe(32)  # 256 bits from the OS's CSPRNG
    link = DriverLink.objects.create(
        partner=partner,
        custody=custody,
        group_reference=group_reference if custody is None else "",
        token_hash=hash_link_token(token),
        sent_to=contact,
        expires_at=now + timedelta(days=settings.BATON["DRIVER_LINK_MAX_DAYS"]),
    )
    if contact:
        _send_link(link, token, contact=contact, reason=reason)
    return link, token


def _send_link(link: DriverLink, token: str, *, contact: str, reason: str) -> None:
    jobs = link_jobs(link)
    what = f"job {jobs[0].partner_reference}" if link.custody_id and jobs else f"route {link.group_reference}"
    body = (
        f"Baton: report on your {what} for {link.partner.name} here (no app needed): "
        f"{driver_link_url(token)}\nThe link is personal to this job; do not share it."
    )
    message = queue_message(
        transport="email" if "@" in contact else "sms",
        purpose="driver.link",
        recipient=contact,
        shipment=jobs[0].shipment if jobs else None,
        subject=f"Your Baton driver link: {what}",
        body=body,
    )
    for custody in jobs:  # a route's link is one message; every job shows that it went out
        record_activity(
            custody.shipment,
            kind="link_sent",
            actor=Activity.Actor.SYSTEM,
            actor_label="Baton",
            summary=f"Driver link sent to {link.partner.name} ({reason})",
            outbound=message,
            details={"driver_link": link.pk},
        )


def send_driver_link(custody: Custody, *, reason: str = "chased") -> DriverLink | None:
    """(Re)send a driver link for a job to its holder's driver contact; None if it has none."""
    partner = custody.partner
    if not partner.driver_contact:
        return None
    link, _token = issue_driver_link(partner, custody=custody, contact=partner.driver_contact, reason=reason)
    return link


def start_driver_link(custody: Custody) -> None:
    """At assignment or hand-off: partners without a system get their link straight away."""
    if custody.partner.sends_driver_links:
        send_driver_link(custody, reason="assigned")


def open_driver_link(token: str, *, now: datetime | None = None) -> DriverLink:
    """The link behind a token, if it can still be used; otherwise LinkRefused says why."""
    now = now or timezone.now()
    link = (
        DriverLink.objects.select_related("partner", "custody__shipment")
        .filter(token_hash=hash_link_token(token))
        .first()
    )
    if link is None:
        raise LinkRefused("unknown")
    if link.revoked_at is not None:
        raise LinkRefused("revoked")
    if now >= link.expires_at or _jobs_over_since(link, now):
        raise LinkRefused("expired")
    return link


def _jobs_over_since(link: DriverLink, now: datetime) -> bool:
    """Every job of the link ended longer ago than the grace period."""
    jobs = link_jobs(link, include_finished=True)
    if not jobs or any(not job_is_finished(c) for c in jobs):
        return False
    grace = timedelta(hours=settings.BATON["DRIVER_LINK_GRACE_HOURS"])
    ended = [moment for moment in (_finished_at(c) for c in jobs) if moment is not None]
    return bool(ended) and now > max(ended) + grace


def _finished_at(custody: Custody) -> datetime | None:
    moments = [m for m in (custody.ended_at, custody.shipment.status_at) if m is not None]
    return min(moments) if moments else None


def link_jobs(link: DriverLink, *, include_finished: bool = True) -> list[Custody]:
    """The jobs the link reports on, in delivery order (promised window first)."""
    if link.custody_id:
        jobs = Custody.objects.filter(pk=link.custody_id)
    else:
        jobs = Custody.objects.filter(partner=link.partner, group_reference=link.group_reference)
        jobs = jobs.filter(started_at__lte=timezone.now())
    jobs = jobs.select_related("shipment", "partner").order_by("shipment__promised_from", "started_at", "id")
    found = list(jobs)
    if not include_finished:
        found = [c for c in found if not job_is_finished(c)]
    return found


def job_is_finished(custody: Custody) -> bool:
    return custody.ended_at is not None or custody.shipment.status in TERMINAL_STATUSES


def check_rate(link: DriverLink) -> bool:
    """At most DRIVER_LINK_TAPS_PER_MINUTE reports a minute per link; open when the cache is down."""
    key = f"driver-link-rate:{link.pk}:{int(timezone.now().timestamp() // 60)}"
    try:
        cache.add(key, 0, timeout=90)
        count = cache.incr(key)
    except Exception:  # the cache is an aid, not a gate: keep accepting reports without it
        return True
    return int(count) <= settings.BATON["DRIVER_LINK_TAPS_PER_MINUTE"]


def clean_image(upload: UploadedFile) -> ContentFile[bytes]:
    """A real image, re-encoded as JPEG with no metadata (EXIF, GPS) and a bounded size."""
    if upload.size is None or upload.size > MAX_IMAGE_BYTES:
        raise DriverReportError("The photo is too large (8 MB at most).", field="photo")
    data = upload.read()
    try:
        Image.open(io.BytesIO(data)).verify()
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DriverReportError("That file is not a photo we can read.", field="photo") from exc
    clean = image.convert("RGB")
    clean.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
    out = io.BytesIO()
    # A fresh image with no `exif=` argument: nothing of the original's metadata is written.
    clean.save(out, format="JPEG", quality=85, optimize=True)
    return ContentFile(out.getvalue())


def store_proof_image(content: ContentFile[bytes], *, custody: Custody, kind: str) -> str:
    name = f"proof/{custody.shipment_id}/{kind}-{uuid.uuid4().hex}.jpg"
    return default_storage.save(name, content)


def record_driver_report(
    link: DriverLink,
    custody_id: int,
    *,
    action: str,
    tap_id: str,
    reason: str = "",
    note: str = "",
    latitude: float | None = None,
    longitude: float | None = None,
    photo: UploadedFile | None = None,
    signature: UploadedFile | None = None,
    recipient: str = "",
    now: datetime | None = None,
) -> InboundMessage:
    """Store one tap as a partner message for the job's own reference; the worker records it."""
    now = now or timezone.now()
    custody = next((c for c in link_jobs(link) if c.pk == custody_id), None)
    if custody is None:
        raise LinkRefused("unknown")  # not a job of this link: say nothing about it
    if job_is_finished(custody):
        raise DriverReportError("This job is finished; nothing more can be reported on it.")
    if action not in DRIVER_ACTIONS:
        raise DriverReportError("Choose one of the buttons.", field="action")
    chosen = DRIVER_ACTIONS[action]
    event: dict[str, Any] = {
        # The merchant's reference reaches this partner's open job even while a reference another
        # partner proposed in a hand-off is still unconfirmed; the job is this link's own either way.
        "reference": custody.shipment.reference,
        "event_id": f"driver-link:{link.pk}:{tap_id}",
        "occurred_at": now.isoformat(),
        "raw_status": f"driver link: {chosen.label}",
    }
    if chosen.status is None:
        if not note.strip():
            raise DriverReportError("Write the note first.", field="note")
        event["kind"] = "note"
    else:
        event["status"] = chosen.status
    if action == "failed":
        if reason not in FAILURE_REASONS:
            raise DriverReportError("Choose why it could not be delivered.", field="reason")
        event["reason"] = reason
    if note.strip():
        event["note"] = note.strip()
    if latitude is not None and longitude is not None:
        event["location"] = {"lat": latitude, "lng": longitude}
    if action == "delivered":
        event["proof"] = _proof(custody, photo, signature, recipient, latitude, longitude)
    try:
        parse_event(event, stored_files=True)  # as the worker will read it
    except InvalidEvent as exc:
        field, problems = next(iter(exc.fields.items()))
        raise DriverReportError(f"{field}: {problems[0]}", field=field.split(".")[0]) from None
    body = json.dumps(event, sort_keys=True).encode()
    with transaction.atomic():
        message = record_inbound(
            link.partner,
            channel=InboundMessage.Channel.DRIVER_LINK,
            body=body,
            headers={"x-baton-driver-link": str(link.pk), "x-baton-custody": str(custody.pk)},
        )
        DriverLink.objects.filter(pk=link.pk).update(last_used_at=now)
    return message


def _proof(
    custody: Custody,
    photo: UploadedFile | None,
    signature: UploadedFile | None,
    recipient: str,
    latitude: float | None,
    longitude: float | None,
) -> dict[str, Any]:
    proof: dict[str, Any] = {}
    if photo is not None:
        proof["photo"] = store_proof_image(clean_image(photo), custody=custody, kind="photo")
    if signature is not None:
        proof["signature"] = store_proof_image(clean_image(signature), custody=custody, kind="signature")
    if recipient.strip():
        proof["signed_by"] = recipient.strip()[:100]
    if latitude is not None and longitude is not None:
        proof["location"] = {"lat": latitude, "lng": longitude}
    if not proof:
        raise DriverReportError(
            "Add a photo, the recipient's name or a signature as proof of delivery.", field="photo"
        )
    return proof


def hand_on(link: DriverLink, custody_id: int, *, to_partner_slug: str) -> Custody:
    """The driver passes the job to a partner operations allowed; Baton names the new reference."""
    from partners.services.custody import hand_off

    custody = next((c for c in link_jobs(link, include_finished=False) if c.pk == custody_id), None)
    if custody is None or custody.ended_at is not None:
        raise DriverReportError("This job is no longer yours to hand on.")
    to_partner = link.partner.driver_handoff_partners.filter(slug=to_partner_slug, is_active=True).first()
    if to_partner is None:
        raise DriverReportError("Choose one of the partners listed.", field="to_partner")
    return hand_off(
        link.partner,
        reference=custody.shipment.reference,
        to_partner=to_partner,
        to_reference=f"BT-{secrets.token_hex(5).upper()}",
        confirmed=True,
        note=f"Handed on to {to_partner.name} from the driver link",
    )


def revoke_driver_links(links: Any, *, now: datetime | None = None) -> int:
    """Operations: stop links working at once."""
    return int(links.filter(revoked_at__isnull=True).update(revoked_at=now or timezone.now()))
