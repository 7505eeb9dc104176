"""What the customer may see and do: the tracking page's content, links, lookup and the second factor.

Never a person's name or phone (beyond the first name a courier recorded on the proof, shown only
after the second factor), never the exact address or raw coordinates; the courier's position only
while out for delivery, near and fresh, as a distance and an offset for a drawn map.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from tracking import timeline
from tracking.models import Activity, Shipment, hash_token, normalise_postcode
from tracking.statuses import TERMINAL_STATUSES, EventKind, Reason, Status

LINK_PREFIX = "s."
LINK_SALT = "baton.tracking-link"
PROOF_SALT = "baton.proof-unlock"
PROOF_COOKIE = "baton_proof"
# The sweep's flags that make the page say "running late" (and notify subscribers).
LATE_FLAGS = frozenset({"eta_passed", "late_risk"})

# Live courier position is shown to the public only while the courier is on the way.
LIVE_POSITION_STATUSES = frozenset({Status.OUT_FOR_DELIVERY, Status.ARRIVING})
# The customer may change arrangements until the job is finished; cancel only before it sets off.
CANCELLABLE_STATUSES = frozenset({Status.PENDING, Status.INFO_RECEIVED, Status.ASSIGNED})
RESCHEDULE_STATUSES = frozenset(
    {
        Status.PENDING,
        Status.INFO_RECEIVED,
        Status.ASSIGNED,
        Status.PICKED_UP,
        Status.IN_TRANSIT,
        Status.ATTEMPT_FAILED,
        Status.EXCEPTION,
        Status.AVAILABLE_FOR_PICKUP,
    }
)
MAP_RINGS_M = (250, 500, 1000, 2000, 5000, 10000, 20000)
CUSTOMER_REQUEST_KINDS = ("instruction", "reschedule", "cancel_request", "case_opened", "subscribed")

STATUS_WORDS: dict[str, tuple[Any, Any]] = {
    Status.PENDING: (
        gettext_lazy("Order received"),
        gettext_lazy("We have your order and will show progress here as soon as it moves."),
    ),
    Status.INFO_RECEIVED: (
        gettext_lazy("Preparing for delivery"),
        gettext_lazy("Your order is being prepared for delivery."),
    ),
    Status.ASSIGNED: (
        gettext_lazy("Courier assigned"),
        gettext_lazy("A courier has been given your delivery."),
    ),
    Status.PICKED_UP: (
        gettext_lazy("Collected"),
        gettext_lazy("Your order has been collected and is on its way."),
    ),
    Status.IN_TRANSIT: (gettext_lazy("On its way"), gettext_lazy("Your order is on its way.")),
    Status.OUT_FOR_DELIVERY: (
        gettext_lazy("Out for delivery"),
        gettext_lazy("Your order is out for delivery."),
    ),
    Status.ARRIVING: (gettext_lazy("Arriving"), gettext_lazy("Your courier is nearly with you.")),
    Status.ATTEMPT_FAILED: (
        gettext_lazy("Delivery attempt failed"),
        gettext_lazy("We tried to deliver your order but could not."),
    ),
    Status.AVAILABLE_FOR_PICKUP: (
        gettext_lazy("Ready to collect"),
        gettext_lazy("Your order is waiting for you to collect it."),
    ),
    Status.DELIVERED: (gettext_lazy("Delivered"), gettext_lazy("Your order has been delivered.")),
    Status.EXCEPTION: (gettext_lazy("Delayed"), gettext_lazy("Something has held up your delivery.")),
    Status.RETURNING: (
        gettext_lazy("Going back to the sender"),
        gettext_lazy("Your order is on its way back to the sender."),
    ),
    Status.RETURNED: (
        gettext_lazy("Returned to the sender"),
        gettext_lazy("Your order has been returned to the sender."),
    ),
    Status.CANCELLED: (gettext_lazy("Cancelled"), gettext_lazy("This delivery has been cancelled.")),
}

REASON_WORDS: dict[str, Any] = {
    Reason.RECIPIENT_NOT_HOME: gettext_lazy("Nobody was in to take it."),
    Reason.ADDRESS_NOT_FOUND: gettext_lazy("The courier could not find the address."),
    Reason.REFUSED: gettext_lazy("The delivery was refused."),
    Reason.ACCESS_RESTRICTED: gettext_lazy("The courier could not get in."),
    Reason.DAMAGED: gettext_lazy("The parcel was damaged."),
    Reason.LOST: gettext_lazy("The parcel has been mislaid."),
    Reason.WEATHER: gettext_lazy("Bad weather held it up."),
    Reason.VEHICLE_ISSUE: gettext_lazy("The courier's vehicle broke down."),
    Reason.NO_COURIER: gettext_lazy("No courier was free."),
    Reason.CANCELLED_BY_MERCHANT: gettext_lazy("The retailer cancelled it."),
    Reason.CANCELLED_BY_CUSTOMER: gettext_lazy("You cancelled it."),
}


# --- links -----------------------------------------------------------------------------------------


def link_token(shipment: Shipment) -> str:
    """A signed link to the shipment's page for messages and the lookup page (HMAC-SHA256, expires).

    It names the current token's hash, so issuing a new tracking token revokes every link too.
    """
    value = signing.dumps({"s": shipment.pk, "h": shipment.tracking_token_hash[:16]}, salt=LINK_SALT)
    return LINK_PREFIX + value


def find_shipment(token: str, *, now: datetime | None = None) -> Shipment | None:
    """The shipment a customer's token (the original 256-bit token or a signed link) opens, if valid."""
    if not token or len(token) > 300:
        return None
    now = now or timezone.now()
    queryset = Shipment.objects.select_related("current_custody__partner")
    if not token.startswith(LINK_PREFIX):
        return queryset.filter(
            tracking_token_hash=hash_token(token), tracking_token_expires_at__gt=now
        ).first()
    max_age = timedelta(days=settings.BATON["TRACKING_TOKEN_DAYS"])
    try:
        data = signing.loads(token[len(LINK_PREFIX) :], salt=LINK_SALT, max_age=max_age)
        pk, token_hash = int(data["s"]), str(data["h"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    shipment = queryset.filter(pk=pk, tracking_token_expires_at__gt=now).first()
    if shipment is None or not hmac.compare_digest(shipment.tracking_token_hash[:16], token_hash):
        return None
    return shipment


def tracking_url(token: str) -> str:
    return f"{settings.SITE_URL}/t/{token}"


# --- the second factor -----------------------------------------------------------------------------


def matches_second_factor(shipment: Shipment | None, *, reference: str, postcode: str) -> bool:
    """Reference and full postcode both match (compared in constant time, also when nothing matched)."""
    want_reference = shipment.reference.upper() if shipment else "-" * 16
    want_postcode = shipment.postcode.replace(" ", "") if shipment else "-" * 8
    got_reference = reference.strip().upper()[:64]
    got_postcode = normalise_postcode(postcode)[:16].replace(" ", "")
    same_reference = hmac.compare_digest(want_reference.encode(), got_reference.encode())
    same_postcode = hmac.compare_digest(want_postcode.encode(), got_postcode.encode())
    return shipment is not None and same_reference and same_postcode and bool(got_postcode)


def lookup(reference: str, postcode: str) -> Shipment | None:
    """The shipment with this order reference and postcode; None, the same way, for either mismatch."""
    shipment = Shipment.objects.filter(
        reference__iexact=reference.strip()[:64], tracking_token_expires_at__gt=timezone.now()
    ).first()
    return shipment if matches_second_factor(shipment, reference=reference, postcode=postcode) else None


def proof_unlock_value(shipment: Shipment) -> str:
    return signing.dumps({"s": shipment.pk}, salt=PROOF_SALT)


def proof_unlocked(shipment: Shipment, cookie: str | None) -> bool:
    """The browser passed the second factor for this shipment recently (a signed, expiring cookie)."""
    if not cookie:
        return False
    try:
        data = signing.loads(cookie, salt=PROOF_SALT, max_age=settings.BATON["PROOF_UNLOCK_SECONDS"])
    except signing.BadSignature:
        return False
    return isinstance(data, dict) and data.get("s") == shipment.pk


# --- what the customer may choose ------------------------------------------------------------------


def reschedule_choices(shipment: Shipment, *, now: datetime | None = None) -> list[tuple[str, str]]:
    """(value, label) of the windows the customer may ask for: the merchant's, else mornings/afternoons."""
    now = now or timezone.now()
    windows: list[tuple[datetime, datetime]] = []
    for option in shipment.reschedule_options or []:
        try:
            start = datetime.fromisoformat(str(option["from"]))
            end = datetime.fromisoformat(str(option["until"]))
        except (KeyError, TypeError, ValueError):
            continue
        if timezone.is_naive(start) or timezone.is_naive(end):
            continue
        windows.append((start, end))
    if not shipment.reschedule_options:
        zone = timezone.get_current_timezone()
        today = timezone.localtime(now, zone).date()
        for offset in range(1, settings.BATON["RESCHEDULE_DAYS"] + 1):
            day = today + timedelta(days=offset)
            for first, last in ((8, 12), (12, 18)):
                windows.append(
                    (
                        datetime.combine(day, time(first), tzinfo=zone),
                        datetime.combine(day, time(last), tzinfo=zone),
                    )
                )
    return [(window_value(start, end), window_label(start, end)) for start, end in windows if start > now]


def window_value(start: datetime, end: datetime) -> str:
    return f"{start.isoformat()}/{end.isoformat()}"


def window_label(start: datetime, end: datetime) -> str:
    from django.utils.formats import date_format

    start, end = timezone.localtime(start), timezone.localtime(end)
    return f"{date_format(start, 'l j F')}, {start:%H:%M}\u2013{end:%H:%M}"


def available_actions(shipment: Shipment) -> dict[str, bool]:
    finished = shipment.status in TERMINAL_STATUSES
    return {
        "instructions": not finished,
        "reschedule": shipment.status in RESCHEDULE_STATUSES,
        "cancel": shipment.allow_cancel and shipment.status in CANCELLABLE_STATUSES,
        "report_problem": True,
        "subscribe": not finished,
    }


def as_json(value: Any) -> Any:
    """The view as JSON types, times written as DRF's DateTimeField writes them (local zone, "Z")."""
    if isinstance(value, dict):
        return {key: as_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(item) for item in value]
    if isinstance(value, datetime):
        text = timezone.localtime(value).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    return value


# --- the page --------------------------------------------------------------------------------------


def public_tracking(
    shipment: Shipment, *, now: datetime | None = None, proof_unlocked: bool = False
) -> dict[str, Any]:
    """What the customer may see: four queries, whatever the number of events."""
    now = now or timezone.now()
    events = list(
        shipment.events.filter(applied=True)
        .exclude(kind=EventKind.NOTE)
        .order_by("sequence")
        .values("kind", "status", "effective_at", "occurred_at", "latitude", "longitude", "partner_id")
    )
    # Always the same four queries (the shipment, its events, its custody chain, the customer's last
    # requests), whatever the number of events, hand-offs or requests: the budget is a constant number.
    chain = list(shipment.custody.select_related("partner").order_by("started_at", "id"))
    requests = list(
        Activity.objects.filter(
            shipment=shipment, actor=Activity.Actor.CUSTOMER, kind__in=CUSTOMER_REQUEST_KINDS
        )
        .select_related("outbound")
        .order_by("-occurred_at", "-id")[:10]
    )
    finished = shipment.is_terminal
    short, sentence = STATUS_WORDS.get(shipment.status, (shipment.status, ""))
    holder = _holder(shipment, chain)
    estimate = _estimate(shipment, now=now)
    late, late_text = _lateness(shipment, estimate, holder_name=holder["name"] if holder else None, now=now)
    proof = shipment.proof if shipment.status == Status.DELIVERED and shipment.proof else None
    return {
        "reference": shipment.reference,
        "status": shipment.status,
        "status_label": str(short),
        "status_text": str(sentence),
        "reason_label": str(REASON_WORDS.get(shipment.reason, "")) if shipment.reason else "",
        "eta": None if finished else shipment.eta,
        "eta_earliest": estimate["earliest"],
        "eta_latest": estimate["latest"],
        "estimate_source": estimate["source"],
        "running_late": late,
        "late_text": late_text,
        "promised_from": shipment.promised_from,
        "promised_until": shipment.promised_until,
        "postcode_district": shipment.postcode_district,
        "carrier": holder["name"] if holder else None,
        "holder": holder,
        "next_steps": [str(step) for step in _next_steps(shipment)],
        "actions": available_actions(shipment),
        # Kept for clients of the first version; coordinates are no longer published (see courier_nearby).
        "courier_location": None,
        "courier_nearby": _courier_nearby(shipment, events, now=now),
        "proof_available": proof is not None,
        "proof": _proof(shipment, proof, events) if proof and proof_unlocked else None,
        "help": {"email": settings.HELP_EMAIL, "phone": settings.HELP_PHONE},
        "requests": [_request(a) for a in requests],
        "last_update": shipment.last_event_at,
        "steps": _steps(events),
    }


def _steps(events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for event in events:
        if (
            event["kind"] == EventKind.STATUS
            and event["status"]
            and (not steps or steps[-1]["status"] != event["status"])
        ):
            at = event["effective_at"] or event["occurred_at"]
            label = STATUS_WORDS.get(event["status"], (event["status"], ""))[0]
            steps.append({"status": event["status"], "label": str(label), "at": at})
    return steps


def _holder(shipment: Shipment, chain: Sequence[Any]) -> dict[str, Any] | None:
    """Who has it (a company, never a person), since when, and the legs before (subcontracting)."""
    if not chain:
        return None
    current = next((link for link in chain if link.ended_at is None), None)
    shown = current or chain[-1]
    legs = [{"name": link.partner.name, "since": link.started_at, "until": link.ended_at} for link in chain]
    if current is not None and not shipment.is_terminal:
        text = _("With our delivery partner %(name)s") % {"name": shown.partner.name}
    elif shipment.status == Status.DELIVERED:
        text = _("Delivered by our delivery partner %(name)s") % {"name": shown.partner.name}
    else:
        text = _("Last with our delivery partner %(name)s") % {"name": shown.partner.name}
    return {
        "name": shown.partner.name,
        "since": shown.started_at,
        "current": current is not None and not shipment.is_terminal,
        "text": text,
        "legs": legs,
    }


def _estimate(shipment: Shipment, *, now: datetime) -> dict[str, Any]:
    """The ETA window (Baton's or the partner's), else the partner's single ETA; nothing once finished."""
    if shipment.is_terminal:
        return {"earliest": None, "latest": None, "source": ""}
    window = None
    if shipment.eta_earliest is not None and shipment.eta_latest is not None:
        window = (shipment.eta_earliest, shipment.eta_latest)
    eta = shipment.eta
    # A partner's ETA still ahead that the stored window does not hold is newer than the window
    # (reconciliation sets the ETA at once; windows are refreshed every few minutes): it wins.
    if window is not None and eta is not None and eta > now and not window[0] <= eta <= window[1]:
        window = None
    if window is not None:
        return {"earliest": window[0], "latest": window[1], "source": shipment.eta_source or "baton"}
    if shipment.eta:
        return {"earliest": shipment.eta, "latest": shipment.eta, "source": "partner"}
    return {"earliest": None, "latest": None, "source": ""}


def _lateness(
    shipment: Shipment, estimate: Mapping[str, Any], *, holder_name: str | None, now: datetime
) -> tuple[bool, str]:
    """Running late when the promised window or the estimate has passed, the partner's ETA is after the
    promise, or the sweep flagged the ETA passed or the risk of being late."""
    if shipment.is_terminal:
        return False, ""
    latest: datetime | None = estimate["latest"]
    promised = shipment.promised_until
    passed = (latest is not None and latest < now) or (promised is not None and promised < now)
    # Baton's window runs to its 90th percentile: ending after the promise is not yet late. Baton
    # calls it late when the sweep flags the risk (as notifications do); a partner, by its own ETA.
    expected = shipment.eta if estimate["source"] == "partner" else None
    beyond = expected is not None and promised is not None and expected > promised
    flagged = bool(LATE_FLAGS & set(shipment.all_flags))
    if not (passed or beyond or flagged):
        return False, ""
    if latest is not None and latest >= now:
        earliest = max(estimate["earliest"] or latest, now)
        start, end = timezone.localtime(earliest), timezone.localtime(latest)
        if end - start < timedelta(minutes=5):
            return True, _("Running late: now expected around %(time)s.") % {"time": f"{end:%H:%M}"}
        return True, _("Running late: now expected between %(start)s and %(end)s.") % {
            "start": f"{start:%H:%M}",
            "end": f"{end:%H:%M}",
        }
    if holder_name:
        return True, _("Running late. We are asking %(name)s for a new time and will update this page.") % {
            "name": holder_name
        }
    return True, _("Running late. We are finding out the new time and will update this page.")


def _next_steps(shipment: Shipment) -> list[Any]:
    """After a failed attempt or a problem: what happens next and what the customer can do."""
    status, reason = shipment.status, shipment.reason
    if status == Status.ATTEMPT_FAILED:
        steps: list[Any] = [gettext_lazy("The courier will try again on the next delivery day.")]
        if reason in (Reason.ADDRESS_NOT_FOUND, Reason.ACCESS_RESTRICTED):
            steps.append(gettext_lazy("Add an access code or directions below so the next try succeeds."))
        elif reason == Reason.REFUSED:
            return [
                gettext_lazy("A refused delivery goes back to the sender."),
                gettext_lazy("If you did not refuse it, report a problem below and we will sort it out."),
            ]
        else:
            steps.append(gettext_lazy("Tell us a safe place or a neighbour below, or choose another day."))
        return steps
    if status == Status.EXCEPTION:
        if reason in (Reason.DAMAGED, Reason.LOST):
            return [
                gettext_lazy("We have been told and are putting it right with the sender."),
                gettext_lazy("Report a problem below if you want us to contact you."),
            ]
        return [
            gettext_lazy(
                "The delivery partner will carry on as soon as it can; this page will show the new time."
            ),
            gettext_lazy("Choose another day below if the new time does not suit you."),
        ]
    if status == Status.AVAILABLE_FOR_PICKUP:
        return [gettext_lazy("Take proof of your order reference when you collect it.")]
    if status == Status.RETURNING:
        return [gettext_lazy("Contact the retailer about a refund or a new delivery.")]
    return []


def _courier_nearby(
    shipment: Shipment, events: Sequence[Mapping[str, Any]], *, now: datetime
) -> dict[str, Any] | None:
    """How far the courier is, only while out for delivery, near and recently seen; never coordinates."""
    custody = shipment.current_custody
    if (
        shipment.status not in LIVE_POSITION_STATUSES
        or custody is None
        or shipment.latitude is None
        or shipment.longitude is None
    ):
        return None
    seen = [
        e
        for e in events
        if e["latitude"] is not None and e["longitude"] is not None and e["partner_id"] == custody.partner_id
    ]
    if not seen:
        return None
    last = seen[-1]
    seen_at = last["effective_at"] or last["occurred_at"]
    if now - seen_at > timedelta(seconds=settings.BATON["LIVE_POSITION_MAX_AGE_SECONDS"]):
        return None
    home = (shipment.latitude, shipment.longitude)
    distance = timeline.haversine_m((last["latitude"], last["longitude"]), home)
    radius = float(settings.BATON["LIVE_POSITION_RADIUS_M"])
    if distance > radius:
        return None
    # Rounded to 100 m: enough to see the courier coming, not to follow them home.
    east = round((last["longitude"] - home[1]) * 111_320 * math.cos(math.radians(home[0])), -2)
    north = round((last["latitude"] - home[0]) * 110_540, -2)
    shown = max(100, round(distance, -2))
    if shown < 1000:
        text = _("Your courier is about %(metres)s m away.") % {"metres": int(shown)}
    else:
        text = _("Your courier is about %(km)s km away.") % {"km": f"{shown / 1000:.1f}"}
    # The outer ring of the drawn map: the smallest round distance that keeps the courier inside.
    ring = next((r for r in MAP_RINGS_M if r >= max(shown, 100) * 1.25), max(MAP_RINGS_M))
    scale = 90 / ring
    return {
        "distance_m": int(shown),
        "text": text,
        "seen_at": seen_at,
        "map": {
            "x": round(100 + east * scale, 1),
            "y": round(100 - north * scale, 1),
            "ring_m": ring,
            "ring_label": f"{ring} m" if ring < 1000 else f"{ring // 1000} km",
        },
    }


def _proof(
    shipment: Shipment, proof: Mapping[str, Any], events: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Photo, signature and place of delivery (only after the second factor)."""
    from tracking.services import proof_file_url

    delivered = [e for e in events if e["status"] == Status.DELIVERED and e["latitude"] is not None]
    place = str(proof.get("place") or proof.get("left_at") or "")[:200]
    if not place and delivered and shipment.latitude is not None and shipment.longitude is not None:
        metres = timeline.haversine_m(
            (delivered[-1]["latitude"], delivered[-1]["longitude"]), (shipment.latitude, shipment.longitude)
        )
        place = (
            _("At your address")
            if metres <= 50
            else _("About %(metres)s m from your address") % {"metres": int(round(metres, -1))}
        )
    photos = [str(url) for url in proof.get("photo_urls") or [] if str(url).startswith("https://")]
    signature = str(proof.get("signature_url") or "")
    signature = signature if signature.startswith("https://") else ""
    # Files Baton stored itself (the driver link) are served behind short-lived signed links.
    if proof.get("photo"):
        photos.insert(0, proof_file_url(str(proof["photo"])))
    if proof.get("signature") and not signature:
        signature = proof_file_url(str(proof["signature"]))
    name = str(proof.get("recipient_name") or proof.get("signed_by") or "")
    return {
        "recipient_name": name.split(" ")[0][:40],
        "photo_urls": photos[:5],
        "signature_url": signature,
        "place": place,
    }


REQUEST_LABELS: dict[str, Any] = {
    "instruction": gettext_lazy("Delivery instructions"),
    "reschedule": gettext_lazy("New delivery day"),
    "cancel_request": gettext_lazy("Cancellation request"),
    "case_opened": gettext_lazy("Problem reported"),
    "subscribed": gettext_lazy("Updates"),
}


def _request(activity: Activity) -> dict[str, Any]:
    """One thing the customer asked, and whether the holder has it (the outbox message's state)."""
    holder = str(activity.details.get("holder") or _("the delivery partner"))
    outbound = activity.outbound
    if activity.kind in ("case_opened", "subscribed"):
        state, text = "done", _("Received by our customer team.") if activity.kind == "case_opened" else ""
    elif outbound is None:
        state, text = "recorded", _("Recorded. Our team will pass it on to %(name)s.") % {"name": holder}
    elif outbound.state == outbound.State.SENT:
        state, text = "sent", _("Received by %(name)s.") % {"name": holder}
    elif outbound.state == outbound.State.FAILED:
        state, text = "failed", _("We could not reach %(name)s; our team will pass it on.") % {"name": holder}
    else:
        state, text = "pending", _("On its way to %(name)s.") % {"name": holder}
    return {
        "kind": activity.kind,
        "label": str(REQUEST_LABELS.get(activity.kind, activity.kind)),
        "summary": str(activity.details.get("public_summary") or ""),
        "at": activity.occurred_at,
        "state": state,
        "state_text": text,
    }
