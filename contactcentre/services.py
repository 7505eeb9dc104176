"""Cases and what agents do about shipments: every change is audited on the case and the timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from contactcentre.models import Case, CaseEvent, CaseNote
from partners.adapters import get_adapter
from partners.models import Custody, InboundMessage, Partner
from partners.services import assign_shipment, replay_messages, send_to_holder
from partners.services.driver_links import send_driver_link
from tracking import webhooks
from tracking.models import Activity, OutboundMessage, Shipment, phone_digits
from tracking.outbox import queue_message
from tracking.services import record_activity


class CaseError(Exception):
    """An action that cannot be done as asked (for example resolving a resolved case)."""


def record_case_event(
    case: Case, *, action: str, actor: User | None = None, label: str = "", **details: Any
) -> CaseEvent:
    """Append to the case's audit history (never edited)."""
    return CaseEvent.objects.create(
        case=case,
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_label=label or (actor.get_username() if actor is not None else "Baton"),
        action=action,
        details=details,
    )


def announce_case(case: Case, event_type: str) -> None:
    """Queue the merchant's `case.opened` / `case.resolved` webhook; call inside the case's transaction."""
    webhooks.announce_case(
        case.shipment,
        event_type,
        {
            "id": case.pk,
            "channel": case.channel,
            "reason": case.reason,
            "status": case.status,
            "resolution": case.resolution,
            "opened_at": case.created_at.isoformat(),
            "resolved_at": case.resolved_at.isoformat() if case.resolved_at else None,
            "opened_by_rule": case.opened_by_rule,
        },
    )


def open_case(
    shipment: Shipment | None,
    *,
    channel: str,
    reason: str,
    summary: str = "",
    opened_by: User | None = None,
    rule: str = "",
    contact_name: str = "",
    contact_detail: str = "",
    owner: User | None = None,
    sla_due_at: datetime | None = None,
) -> Case:
    """Open a case from a contact or a rule; it shows in the case history and on the shipment's timeline."""
    now = timezone.now()
    with transaction.atomic():
        case = Case.objects.create(
            shipment=shipment,
            channel=channel,
            reason=reason,
            summary=summary[:300],
            opened_by=opened_by,
            opened_by_rule=rule,
            owner=owner,
            contact_name=contact_name,
            contact_detail=contact_detail,
            sla_due_at=sla_due_at or Case.default_sla_due(now),
            created_at=now,
        )
        if rule:
            actor_kind, label = Activity.Actor.RULE, rule
        elif opened_by is not None:
            actor_kind, label = Activity.Actor.AGENT, opened_by.get_username()
        else:
            actor_kind, label = Activity.Actor.CUSTOMER, "customer"
        record_case_event(case, action="opened", actor=opened_by, label=label, channel=channel, reason=reason)
        if shipment is not None:
            record_activity(
                shipment,
                kind="case_opened",
                actor=actor_kind,
                actor_label=label,
                summary=f"Case {case.pk} opened ({case.get_reason_display()}, {case.get_channel_display()})"
                + (f": {case.summary}" if rule and case.summary else ""),
                case=case,
            )
        if owner is not None:
            record_case_event(
                case, action="assigned", actor=opened_by, label=label, owner=owner.get_username()
            )
        announce_case(case, "case.opened")
    return case


def _locked(case: Case) -> Case:
    return Case.objects.select_for_update(of=("self",)).select_related("shipment", "owner").get(pk=case.pk)


def _on_timeline(case: Case, *, kind: str, by: User, summary: str, **fields: Any) -> Activity | None:
    if case.shipment is None:
        return None
    return record_activity(
        case.shipment,
        kind=kind,
        actor=Activity.Actor.AGENT,
        actor_label=by.get_username(),
        user=by,
        summary=summary,
        case=case,
        **fields,
    )


def update_case(case: Case, *, by: User, **changes: str) -> Case:
    """Correct the reason, summary or contact of a case; the audit keeps what it was before."""
    allowed = {"reason", "summary", "contact_name", "contact_detail"}
    if set(changes) - allowed:
        raise CaseError(f"Only {', '.join(sorted(allowed))} can be changed this way.")
    if "reason" in changes and changes["reason"] not in Case.Reason.values:
        raise CaseError("Choose a contact reason.")
    with transaction.atomic():
        case = _locked(case)
        before = {name: getattr(case, name) for name in changes if getattr(case, name) != changes[name]}
        if not before:
            return case
        for name in before:
            setattr(case, name, changes[name])
        case.save(update_fields=[*before, "updated_at"])
        record_case_event(
            case, action="updated", actor=by, before=before, after={k: changes[k] for k in before}
        )
    return case


def take_ownership(case: Case, *, by: User) -> Case:
    """The agent owns the case from now until it is closed or handed on."""
    with transaction.atomic():
        case = _locked(case)
        if not case.is_open:
            raise CaseError("This case is resolved; reopen it first.")
        if case.owner_id == by.pk:
            return case
        previous = case.owner.get_username() if case.owner else ""
        case.owner = by
        case.save(update_fields=["owner", "updated_at"])
        record_case_event(case, action="assigned", actor=by, owner=by.get_username(), previous_owner=previous)
    return case


def hand_over(case: Case, *, to: User, by: User, note: str = "") -> Case:
    """Give the case to another agent; they own it from now."""
    if not to.is_active or not to.has_perm("contactcentre.change_case"):
        raise CaseError(f"{to.get_username()} cannot take cases.")
    with transaction.atomic():
        case = _locked(case)
        if not case.is_open:
            raise CaseError("This case is resolved; reopen it first.")
        if case.owner_id == to.pk:
            raise CaseError(f"{to.get_username()} already owns this case.")
        previous = case.owner.get_username() if case.owner else ""
        case.owner = to
        case.save(update_fields=["owner", "updated_at"])
        record_case_event(
            case, action="handed_over", actor=by, owner=to.get_username(), previous_owner=previous, note=note
        )
        _on_timeline(
            case, kind="case_handed_over", by=by, summary=f"Case {case.pk} handed to {to.get_username()}"
        )
    return case


def escalate_case(case: Case, *, by: User | None = None, rule: str = "", note: str = "") -> Case:
    """Put the case in the supervisors' queue (the owner keeps it); by an agent or by a rule."""
    if by is None and not rule:
        raise ValueError("a case is escalated by an agent or by a rule")
    with transaction.atomic():
        case = _locked(case)
        if not case.is_open:
            raise CaseError("This case is resolved; reopen it first.")
        if case.escalated:
            raise CaseError("This case is already escalated.")
        case.escalated = True
        case.save(update_fields=["escalated", "updated_at"])
        record_case_event(case, action="escalated", actor=by, label=rule, note=note)
        summary = f"Case {case.pk} escalated to a supervisor"
        if rule and case.shipment is not None:
            record_activity(
                case.shipment,
                kind="escalation",
                actor=Activity.Actor.RULE,
                actor_label=rule,
                summary=f"{summary}: {note}" if note else summary,
                case=case,
            )
        elif by is not None:
            _on_timeline(case, kind="escalation", by=by, summary=summary)
    return case


def set_case_status(case: Case, *, status: str, by: User) -> Case:
    """Open, waiting on partner or waiting on customer; resolving goes through `resolve_case`."""
    if status not in Case.Status.values or status == Case.Status.RESOLVED:
        raise CaseError("Choose open, waiting on partner or waiting on customer.")
    with transaction.atomic():
        case = _locked(case)
        if not case.is_open:
            raise CaseError("This case is resolved; reopen it first.")
        if case.status == status:
            return case
        previous = case.status
        case.status = status
        case.save(update_fields=["status", "updated_at"])
        record_case_event(case, action="status", actor=by, status=status, previous=previous)
    return case


def resolve_case(case: Case, *, resolution: str, by: User, note: str = "") -> Case:
    """Close the case with a resolution code; it leaves every open queue."""
    if resolution not in Case.Resolution.values:
        raise CaseError("Choose a resolution code.")
    with transaction.atomic():
        case = _locked(case)
        if not case.is_open:
            raise CaseError("This case is already resolved.")
        case.status = Case.Status.RESOLVED
        case.resolution = resolution
        case.resolved_at = timezone.now()
        case.escalated = False
        case.save(update_fields=["status", "resolution", "resolved_at", "escalated", "updated_at"])
        record_case_event(case, action="resolved", actor=by, resolution=resolution, note=note)
        _on_timeline(
            case,
            kind="case_resolved",
            by=by,
            summary=f"Case {case.pk} resolved: {case.get_resolution_display()}",
        )
        announce_case(case, "case.resolved")
    return case


def reopen_case(case: Case, *, by: User, note: str = "") -> Case:
    """Reopen a resolved case, owned by whoever reopens it, with a fresh SLA."""
    with transaction.atomic():
        case = _locked(case)
        if case.is_open:
            raise CaseError("This case is already open.")
        case.status = Case.Status.OPEN
        case.resolution = ""
        case.resolved_at = None
        case.owner = by
        case.sla_due_at = Case.default_sla_due()
        case.save(update_fields=["status", "resolution", "resolved_at", "owner", "sla_due_at", "updated_at"])
        record_case_event(case, action="reopened", actor=by, note=note)
        _on_timeline(case, kind="case_reopened", by=by, summary=f"Case {case.pk} reopened")
    return case


def add_note(case: Case, *, body: str, by: User, visible_to_customer: bool = False) -> CaseNote:
    """An internal note, or one the customer may see; both go in the audit history."""
    body = body.strip()
    if not body:
        raise CaseError("Write the note first.")
    with transaction.atomic():
        note = CaseNote.objects.create(
            case=case, author=by, body=body, visible_to_customer=visible_to_customer
        )
        record_case_event(
            case, action="note", actor=by, note=note.pk, visible_to_customer=visible_to_customer
        )
        _on_timeline(
            case,
            kind="case_note",
            by=by,
            summary=f"Note on case {case.pk}" + (" (customer can see it)" if visible_to_customer else ""),
        )
    return note


# --- Actions that reach someone ------------------------------------------------------------------


@dataclass(frozen=True)
class ActionResult:
    """What an action did: its timeline entry and the message it queued, if any."""

    activity: Activity
    outbound: OutboundMessage | None

    @property
    def outcome(self) -> str:
        return self.activity.outcome


def _record_action(
    shipment: Shipment,
    *,
    kind: str,
    by: User | None,
    case: Case | None,
    summary: str,
    rule: str = "",
    outbound: OutboundMessage | None = None,
    details: dict[str, Any] | None = None,
) -> ActionResult:
    """Put an action on the timeline (and the case's history), as the agent `by` or the rule `rule`."""
    if case is not None and case.shipment_id not in (None, shipment.pk):
        raise CaseError("That case is about another shipment.")
    if rule:
        actor, label, user = Activity.Actor.RULE, rule, None
    elif by is not None:
        actor, label, user = Activity.Actor.AGENT, by.get_username(), by
    else:
        raise ValueError("an action is taken by an agent or by a rule")
    activity = record_activity(
        shipment,
        kind=kind,
        actor=actor,
        actor_label=label,
        user=user,
        summary=summary,
        outbound=outbound,
        case=case,
        details=details,
    )
    if case is not None:
        record_case_event(
            case,
            action="action",
            actor=user,
            label=label,
            kind=kind,
            summary=summary,
            activity=activity.pk,
            outbound=outbound.pk if outbound else None,
        )
    return ActionResult(activity=activity, outbound=outbound)


def _holder(shipment: Shipment) -> Custody:
    custody = shipment.custody.select_related("partner").filter(ended_at__isnull=True).first()
    if custody is None:
        raise CaseError("Nobody holds this shipment now, so there is no one to contact.")
    return custody


CHANNEL_WORDS = {
    "partner_callback": "its callback",
    "partner_api": "its API",
    "partner_email": "e-mail to its operations contact",
}


def chase_channel(partner: Partner) -> str:
    """How a chase reaches the partner: its callback, its vendor API (a pull adapter asks the vendor
    for the job's latest now), e-mail to its operations contact, else "" (a driver link or nothing)."""
    if partner.callback_url:
        return "partner_callback"
    if get_adapter(partner.adapter).can_fetch and partner.config:
        return "partner_api"
    if partner.ops_email:
        return "partner_email"
    return ""


def chase_holder(
    shipment: Shipment,
    *,
    by_user: User | None = None,
    rule: str = "",
    case: Case | None = None,
    note: str = "",
) -> ActionResult:
    """Ask the partner holding the shipment for an update on its own channel (`chase_channel`).

    Taken by an agent (`by_user`) or by one of operations' rules (`rule`, its name); a contractor with
    driver links gets a fresh one as well. CaseError when nobody holds it or the holder has no channel.
    """
    custody = _holder(shipment)
    partner = custody.partner
    text = (
        f"Please send an update on your job {custody.partner_reference} (order {shipment.reference}, "
        f"{shipment.postcode_district}): where is it now and when will it arrive?"
    )
    if note.strip():
        text += f"\n\n{note.strip()}"
    payload: dict[str, Any] = {
        "type": "chase",
        "partner_reference": custody.partner_reference,
        "merchant_reference": shipment.reference,
        "requested_at": timezone.now().isoformat(),
        "text": text,
    }
    # A contractor with no system is chased through its driver link: a fresh link goes with the chase.
    by_driver_link = partner.sends_driver_links and bool(partner.driver_contact)
    transport = chase_channel(partner)
    recipient = {
        "partner_callback": partner.callback_url,
        "partner_api": partner.slug,
        "partner_email": partner.ops_email,
    }.get(transport, "")
    if transport in ("partner_callback", "partner_api"):
        payload = {**payload, "partner_id": partner.pk, "custody_id": custody.pk}
    if not transport and not by_driver_link:
        raise CaseError(
            f"{partner.name} has no contact channel (a callback, an operations e-mail or a driver link): "
            "call them."
        )
    details = {"partner": partner.slug, "custody": custody.pk, "text": text}
    with transaction.atomic():
        link = send_driver_link(custody, reason="chased") if by_driver_link else None
        if not transport:
            # The chase is the link itself: its message's outcome is the chase's.
            outbound = (
                OutboundMessage.objects.filter(shipment=shipment, purpose="driver.link")
                .order_by("-pk")
                .first()
                if link is not None
                else None
            )
            return _record_action(
                shipment,
                kind="chase",
                by=by_user,
                rule=rule,
                case=case,
                summary=f"Chased {partner.name} with a new driver link",
                outbound=outbound,
                details=details,
            )
        outbound = queue_message(
            transport=transport,
            purpose="partner.chase",
            recipient=recipient,
            shipment=shipment,
            subject=f"Update needed on {custody.partner_reference} ({shipment.reference})",
            body=f"Hello {partner.name},\n\n{text}\n\nBaton",
            payload=payload,
        )
        return _record_action(
            shipment,
            kind="chase",
            by=by_user,
            rule=rule,
            case=case,
            summary=f"Chased {partner.name} by {CHANNEL_WORDS[transport]}",
            outbound=outbound,
            details=details,
        )


def route_instruction(
    shipment: Shipment, *, by_user: User, text: str, reschedule: bool = False, case: Case | None = None
) -> ActionResult:
    """A delivery instruction or a reschedule request from the customer, sent to the holder on its channel."""
    text = text.strip()
    if not text:
        raise CaseError("Write the instruction first.")
    if shipment.is_terminal:
        raise CaseError("This delivery is finished; nothing can be routed to the holder.")
    custody = _holder(shipment)
    kind = "reschedule" if reschedule else "instructions"
    with transaction.atomic():
        routed = send_to_holder(shipment, kind=kind, text=text, fields={"from": "agent"})
        if routed.message is None:
            raise CaseError(
                f"{custody.partner.name} has no channel for requests (callback, API or operations e-mail): "
                "call them."
            )
        what = "Reschedule request" if reschedule else "Delivery instruction"
        return _record_action(
            shipment,
            kind="reschedule" if reschedule else "instruction",
            by=by_user,
            case=case,
            summary=f"{what} sent to {routed.holder} by {CHANNEL_WORDS.get(routed.channel, routed.channel)}",
            outbound=routed.message,
            details={"partner": custody.partner.slug, "text": text},
        )


def _customer_recipient(shipment: Shipment, channel: str) -> str:
    if channel == "email":
        if not shipment.customer_email:
            raise CaseError("There is no e-mail address for this customer.")
        return shipment.customer_email
    if channel == "sms":
        if not shipment.customer_phone:
            raise CaseError("There is no phone number for this customer.")
        return shipment.customer_phone
    raise CaseError("Choose e-mail or SMS.")


def resend_tracking_link(
    shipment: Shipment, *, by_user: User, channel: str = "email", case: Case | None = None
) -> ActionResult:
    """Issue a new tracking link (the old one stops working) and send it to the customer."""
    recipient = _customer_recipient(shipment, channel)
    with transaction.atomic():
        locked = Shipment.objects.select_for_update().get(pk=shipment.pk)
        token = locked.issue_tracking_token()
        locked.save(update_fields=["tracking_token_hash", "tracking_token_expires_at", "updated_at"])
        url = f"{settings.SITE_URL}/t/{token}"
        outbound = queue_message(
            transport=channel,
            purpose="customer.tracking_link",
            recipient=recipient,
            shipment=locked,
            subject=f"Track your delivery {locked.reference}",
            body=f"Hello {locked.customer_name}, you can follow your delivery {locked.reference} here: {url}",
        )
        return _record_action(
            locked,
            kind="link_sent",
            by=by_user,
            case=case,
            summary=f"New tracking link sent to the customer by {'e-mail' if channel == 'email' else 'SMS'}",
            outbound=outbound,
        )


def message_customer(
    shipment: Shipment, *, by_user: User, body: str, channel: str = "email", case: Case | None = None
) -> ActionResult:
    """Send the customer a message written by the agent."""
    body = body.strip()
    if not body:
        raise CaseError("Write the message first.")
    recipient = _customer_recipient(shipment, channel)
    with transaction.atomic():
        outbound = queue_message(
            transport=channel,
            purpose="customer.message",
            recipient=recipient,
            shipment=shipment,
            subject=f"About your delivery {shipment.reference}",
            body=body,
        )
        return _record_action(
            shipment,
            kind="customer_message",
            by=by_user,
            case=case,
            summary=f"Message sent to the customer by {'e-mail' if channel == 'email' else 'SMS'}",
            outbound=outbound,
            details={"text": body},
        )


def reassign_to_partner(
    shipment: Shipment, *, by_user: User, partner: Partner, partner_reference: str, case: Case | None = None
) -> ActionResult:
    """Operations hand the job to another partner (ending the current holder's custody)."""
    partner_reference = partner_reference.strip()
    if not partner_reference:
        raise CaseError("Give the new partner's reference for the job.")
    if shipment.is_terminal:
        raise CaseError("This delivery is finished; it cannot be reassigned.")
    if not partner.is_active:
        raise CaseError(f"{partner.name} is not active.")
    with transaction.atomic():
        previous = shipment.custody.select_related("partner").filter(ended_at__isnull=True).first()
        assign_shipment(shipment, partner=partner, partner_reference=partner_reference)
        was = f" from {previous.partner.name}" if previous else ""
        return _record_action(
            shipment,
            kind="reassigned",
            by=by_user,
            case=case,
            summary=f"Reassigned{was} to {partner.name} as {partner_reference}",
            details={"partner": partner.slug, "partner_reference": partner_reference},
        )


def replay_unmatched(*, by_user: User, partner: Partner | None = None) -> int:
    """Put unmatched and unparsed inbound messages back through matching; returns how many."""
    return replay_messages(
        partner=partner, states=[InboundMessage.State.UNMATCHED, InboundMessage.State.FAILED]
    )


def lookup_caller(phone: str, *, limit: int = 20) -> tuple[list[Shipment], list[Case]]:
    """A caller's open shipments (matched on the last ten digits of the phone) and their open cases."""
    digits = phone_digits(phone)
    if len(digits) < 6:
        raise CaseError("Give at least six digits of the phone number.")
    shipments = list(
        Shipment.objects.open()
        .filter(phone_digits__endswith=digits[-10:])
        .select_related("current_custody__partner")
        .order_by("-updated_at", "-id")[:limit]
    )
    cases = list(
        Case.objects.filter(shipment__in=[s.pk for s in shipments])
        .exclude(status=Case.Status.RESOLVED)
        .select_related("shipment", "owner", "opened_by")
        .order_by("sla_due_at", "id")
    )
    return shipments, cases
