"""What customers do on their tracking page: instructions, a new day, cancel, report a problem, subscribe.

Each request is checked against the shipment's state under its row lock, refused once the job is
finished, sent to whoever holds the job on its own channel (`partners.services.send_to_holder`),
and put on the timeline as an Activity whose outcome is the outbox state the customer sees.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from contactcentre.models import Case, CaseNote, Subscription
from contactcentre.notifications import mask
from contactcentre.services import open_case
from partners.services import send_to_holder
from tracking import public
from tracking.models import Activity, Shipment
from tracking.services import record_activity

MAX_SUBSCRIPTIONS = 4
INSTRUCTION_LABELS = {
    "safe_place": "Safe place",
    "neighbour": "Neighbour",
    "access_code": "Access code",
    "note": "Note",
}


class Refused(Exception):
    """The request cannot be taken in the shipment's current state; `message` says why, for the customer."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _locked(shipment: Shipment) -> Shipment:
    return (
        Shipment.objects.select_related("current_custody__partner")
        .select_for_update(of=("self",))
        .get(pk=shipment.pk)
    )


def _refuse_if_finished(shipment: Shipment) -> None:
    if shipment.is_terminal:
        raise Refused(_("This delivery is finished, so it can no longer be changed."))


def mark_customer_acted(shipment: Shipment) -> None:
    """The tracking page shows the customer's requests (and looks them up) from now on."""
    shipment.customer_acted_at = timezone.now()
    Shipment.objects.filter(pk=shipment.pk).update(customer_acted_at=shipment.customer_acted_at)


def _record(
    shipment: Shipment, *, kind: str, summary: str, public_summary: str, routed: Any, details: dict[str, Any]
) -> Activity:
    mark_customer_acted(shipment)
    where = f" Sent to {routed.holder} by {routed.channel}." if routed.message else " Not sent: pass it on."
    return record_activity(
        shipment,
        kind=kind,
        actor=Activity.Actor.CUSTOMER,
        actor_label="customer",
        summary=summary + (where if routed.holder else " Nobody holds the job yet."),
        outbound=routed.message,
        details={
            **details,
            "via": "web",
            "holder": routed.holder,
            "route": routed.channel,
            "public_summary": public_summary,
        },
    )


def leave_instructions(
    shipment: Shipment, *, safe_place: str = "", neighbour: str = "", access_code: str = "", note: str = ""
) -> Activity:
    """Delivery instructions for the courier (at least one field)."""
    fields = {
        key: value
        for key, value in (
            ("safe_place", safe_place),
            ("neighbour", neighbour),
            ("access_code", access_code),
            ("note", note),
        )
        if value
    }
    if not fields:
        raise Refused(_("Fill in at least one of the fields."))
    with transaction.atomic():
        shipment = _locked(shipment)
        _refuse_if_finished(shipment)
        text = "\n".join(f"{INSTRUCTION_LABELS[key]}: {value}" for key, value in fields.items())
        routed = send_to_holder(shipment, kind="instructions", text=text, fields=fields)
        shown = [
            _("access code given") if key == "access_code" else f"{INSTRUCTION_LABELS[key].lower()}: {value}"
            for key, value in fields.items()
        ]
        return _record(
            shipment,
            kind="instruction",
            summary="Customer left delivery instructions.",
            public_summary="; ".join(shown)[:300],
            routed=routed,
            details={"fields": fields},
        )


def parse_window(value: str) -> tuple[datetime, datetime]:
    start, _sep, end = value.partition("/")
    return datetime.fromisoformat(start), datetime.fromisoformat(end)


def request_reschedule(shipment: Shipment, *, window: str) -> Activity:
    """Ask the holder for another delivery window, one of those the merchant allows."""
    with transaction.atomic():
        shipment = _locked(shipment)
        _refuse_if_finished(shipment)
        if shipment.status not in public.RESCHEDULE_STATUSES:
            raise Refused(_("The courier is already on the way, so the day can no longer be changed."))
        if window not in dict(public.reschedule_choices(shipment)):
            raise Refused(_("That day is no longer available; please choose another."))
        start, end = parse_window(window)
        label = public.window_label(start, end)
        routed = send_to_holder(
            shipment,
            kind="reschedule",
            text=f"Deliver instead on {label} ({start.isoformat()} to {end.isoformat()}).",
            fields={"from": start.isoformat(), "until": end.isoformat()},
            window=(start, end),
        )
        return _record(
            shipment,
            kind="reschedule",
            summary=f"Customer asked for delivery on {label}.",
            public_summary=label,
            routed=routed,
            details={"from": start.isoformat(), "until": end.isoformat()},
        )


def request_cancellation(shipment: Shipment, *, reason: str = "") -> Activity:
    """Ask to cancel, where the merchant allows it and only until the courier sets off."""
    with transaction.atomic():
        shipment = _locked(shipment)
        _refuse_if_finished(shipment)
        if not shipment.allow_cancel:
            raise Refused(_("This delivery cannot be cancelled here; please contact the retailer."))
        if shipment.status not in public.CANCELLABLE_STATUSES:
            raise Refused(_("The courier is already on the way, so it can no longer be cancelled."))
        routed = send_to_holder(
            shipment,
            kind="cancel",
            text="The customer asks to cancel this delivery." + (f" Reason: {reason}" if reason else ""),
            fields={"reason": reason} if reason else {},
        )
        return _record(
            shipment,
            kind="cancel_request",
            summary="Customer asked to cancel the delivery." + (f" Reason: {reason}" if reason else ""),
            public_summary=_("Cancel this delivery"),
            routed=routed,
            details={"reason": reason},
        )


def report_problem(shipment: Shipment, *, reason: str, description: str = "", contact: str = "") -> Case:
    """Open a case with the shipment's context for the contact centre (allowed after delivery too)."""
    with transaction.atomic():
        label = dict(Case.Reason.choices).get(reason, reason)
        case = open_case(
            shipment,
            channel=Case.Channel.WEB,
            reason=reason,
            summary=f"{label}: {description}"[:300] if description else str(label),
            contact_detail=contact[:200],
        )
        if description:
            CaseNote.objects.create(case=case, body=description)
        if shipment is not None:
            mark_customer_acted(shipment)
        Activity.objects.filter(case=case, kind="case_opened").update(
            details={"public_summary": str(label), "via": "web"}
        )
        return case


def subscribe(
    shipment: Shipment, *, email: str = "", phone: str = "", time_zone: str = "", language: str = ""
) -> list[Subscription]:
    """Delivery updates by e-mail and/or SMS (a former subscription to the same address comes back)."""
    wanted = [(Subscription.Channel.EMAIL, email.strip().lower()), (Subscription.Channel.SMS, phone.strip())]
    wanted = [(channel, address) for channel, address in wanted if address]
    if not wanted:
        raise Refused(_("Give an e-mail address, a mobile number, or both."))
    with transaction.atomic():
        shipment = _locked(shipment)
        _refuse_if_finished(shipment)
        active = Subscription.objects.filter(shipment=shipment, unsubscribed_at__isnull=True)
        new = [w for w in wanted if not active.filter(channel=w[0], address=w[1]).exists()]
        if active.count() + len(new) > MAX_SUBSCRIPTIONS:
            raise Refused(_("This delivery already has as many subscribers as it can."))
        subscriptions = []
        mark_customer_acted(shipment)
        if not shipment.has_subscribers:
            shipment.has_subscribers = True
            shipment.save(update_fields=["has_subscribers", "updated_at"])
        for channel, address in wanted:
            subscription, _created = Subscription.objects.update_or_create(
                shipment=shipment,
                channel=channel,
                address=address,
                defaults={
                    "source": Subscription.Source.PAGE,
                    "unsubscribed_at": None,
                    "time_zone": time_zone,
                    "language": language[:16],
                },
            )
            subscriptions.append(subscription)
            record_activity(
                shipment,
                kind="subscribed",
                actor=Activity.Actor.CUSTOMER,
                actor_label="customer",
                summary=f"Customer subscribed to {subscription.get_channel_display()} updates "
                f"({mask(address)}).",
                details={
                    "subscription": subscription.pk,
                    "via": "web",
                    "public_summary": (
                        _("By e-mail to %(address)s") if channel == "email" else _("By text to %(address)s")
                    )
                    % {"address": mask(address)},
                },
            )
        return subscriptions
