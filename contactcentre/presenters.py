"""What the console pages show of a shipment: flags in words and one timeline of everything.

Partner events, Baton's activities and case events are merged in time order, each with its source
and the holder at the time; a constant number of queries whatever the shipment's history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contactcentre.models import CaseEvent
from partners.models import InboundMessage
from tracking.flags import describe
from tracking.models import Activity, OutboundMessage, Shipment, TrackingEvent
from tracking.services import custody_chain, proof_file_url

# Case events that have no timeline activity of their own (the others are mirrored as activities).
CASE_ONLY_ACTIONS = {"assigned": "took ownership of", "status": "changed the status of"}
RAW_LIMIT = 4000


@dataclass(frozen=True)
class FlagText:
    code: str
    label: str
    explanation: str


@dataclass
class Entry:
    """One line of the merged timeline."""

    at: datetime
    type: str  # "partner", "activity" or "case"
    what: str
    source: str
    holder: str = ""
    partner_said: str = ""
    applied: bool = True
    outcome: str = ""
    flags: list[FlagText] = field(default_factory=list)
    raw: str = ""
    case_id: int | None = None
    rule: str = ""  # the rule that took this action, for Baton's own actions
    channel: str = ""
    failed: bool = False


def flag_list(codes: list[str]) -> list[FlagText]:
    return [FlagText(code, *describe(code)) for code in codes]


def _event_entry(event: TrackingEvent, raw: dict[int, str]) -> Entry:
    what = event.get_kind_display()
    if event.status:
        what += f": {event.get_status_display()}"
    if event.reason:
        what += f" ({event.get_reason_display()})"
    if event.details.get("to_partner"):
        what += f" → {event.details['to_partner']} as {event.details.get('to_reference', '')}"
    if event.note:
        what += f" — {event.note}"
    source = event.partner.name if event.partner else "Baton"
    if event.message_id and event.message:
        source += f" · {event.message.get_channel_display()}"
    holder = ""
    if event.custody_id and event.custody:
        holder = f"{event.custody.partner.slug} ({event.custody.partner_reference})"
    return Entry(
        at=event.effective_at or event.occurred_at,
        type="partner",
        what=what,
        source=source,
        holder=holder,
        partner_said=event.raw_status,
        applied=event.applied,
        flags=flag_list(list(event.flags)),
        raw=raw.get(event.message_id or 0, ""),
    )


CHANNELS = {
    "partner_callback": "Partner callback",
    "partner_api": "Partner API",
    "partner_email": "E-mail to the partner",
    "email": "E-mail",
    "sms": "SMS",
    "merchant_webhook": "Merchant webhook",
}
FAILING = {OutboundMessage.State.RETRYING, OutboundMessage.State.FAILED}


def activity_outcome(activity: Activity) -> tuple[str, bool]:
    """The outcome in words, and whether it failed: a message's state (with the error while it fails),
    or why Baton did not send what it meant to."""
    message = activity.outbound if activity.outbound_id else None
    if message is not None:
        text = message.get_state_display()
        if message.state in FAILING and message.last_error:
            text += f": {message.last_error[:200]}"
        return text, message.state in FAILING
    if activity.outcome == "not_sent":
        return f"Not sent: {activity.details.get('why', '')}".strip(": "), True
    return "Done", False


def _activity_entry(activity: Activity, holder: str) -> Entry:
    outcome, failed = activity_outcome(activity)
    return Entry(
        at=activity.occurred_at,
        type="activity",
        what=activity.summary,
        source=f"{activity.get_actor_display()} {activity.actor_label}".strip(),
        holder=holder,
        outcome=outcome,
        case_id=activity.case_id,
        rule=activity.actor_label if activity.actor == Activity.Actor.RULE else "",
        channel=CHANNELS.get(activity.channel, activity.channel),
        failed=failed,
    )


def _holder_at(chain: list[dict[str, Any]], moment: datetime) -> str:
    for link in reversed(chain):
        if link["started_at"] <= moment and (link["ended_at"] is None or link["ended_at"] > moment):
            return f"{link['partner']} ({link['partner_reference']})"
    return ""


def shipment_timeline(shipment: Shipment, *, raw_messages: bool = False) -> dict[str, Any]:
    """Custody chain, flags explained and the merged timeline (4 queries, 5 with raw messages)."""
    events = list(TrackingEvent.objects.filter(shipment=shipment).with_sources())
    chain = custody_chain(shipment, events=events)
    raw: dict[int, str] = {}
    if raw_messages:
        # A subquery, not the ids in hand: with none, Django would skip the query, and the page's
        # query count would depend on the shipment's history.
        behind = TrackingEvent.objects.filter(shipment=shipment, message__isnull=False).values("message_id")
        for message in InboundMessage.objects.filter(pk__in=behind).only("id", "body"):
            raw[message.pk] = bytes(message.body).decode("utf-8", "replace")[:RAW_LIMIT]
    activities = Activity.objects.filter(shipment=shipment).select_related("outbound")
    case_events = CaseEvent.objects.filter(case__shipment=shipment, action__in=list(CASE_ONLY_ACTIONS)).only(
        "at", "action", "actor_label", "case_id", "details"
    )
    entries = [_event_entry(e, raw) for e in events]
    entries += [_activity_entry(a, _holder_at(chain, a.occurred_at)) for a in activities]
    for event in case_events:
        what = f"{event.actor_label} {CASE_ONLY_ACTIONS[event.action]} case {event.case_id}"
        if event.action == "status":
            what += f" ({str(event.details.get('status', '')).replace('_', ' ')})"
        entries.append(
            Entry(
                at=event.at,
                type="case",
                what=what,
                source=f"Agent {event.actor_label}",
                holder=_holder_at(chain, event.at),
                case_id=event.case_id,
            )
        )
    entries.sort(key=lambda entry: entry.at)
    current = next((link for link in chain if link["is_current"]), None)
    return {
        "entries": entries,
        # What Baton's rules already did (the agent sees it before chasing again), newest first.
        "baton_actions": [entry for entry in reversed(entries) if entry.rule],
        "chain": chain,
        "holder": current,
        "flags": flag_list(shipment.all_flags),
        "proof_items": proof_items(shipment.proof),
        "late_risk_percent": late_risk_percent(shipment),
    }


def late_risk_percent(shipment: Shipment) -> int | None:
    return round(shipment.late_risk * 100) if shipment.late_risk is not None else None


PROOF_LABELS = {
    "signed_by": "Received by",
    "photo": "Photo",
    "photo_url": "Photo",
    "signature": "Signature",
    "signature_url": "Signature",
    "location": "Where it was delivered",
    "note": "Note",
}
PROOF_FILES = {"photo", "signature", "photo_url", "signature_url"}


@dataclass(frozen=True)
class ProofItem:
    label: str
    text: str
    url: str = ""


def proof_items(proof: Any) -> list[ProofItem]:
    """Proof of delivery in words; stored photos and signatures as links that expire."""
    if not isinstance(proof, dict):
        return []
    items = []
    for key, value in proof.items():
        if not value:
            continue
        label = PROOF_LABELS.get(key, key.replace("_", " ").capitalize())
        if key in PROOF_FILES and isinstance(value, str):
            url = value if value.startswith("https://") else proof_file_url(value)
            items.append(ProofItem(label, f"View the {label.lower()}", url))
        elif isinstance(value, dict) and {"lat", "lng"} <= set(value):
            items.append(ProofItem(label, f"{value['lat']:.5f}, {value['lng']:.5f}"))
        else:
            items.append(ProofItem(label, str(value)))
    return items


CASE_ACTION_WORDS = {
    "opened": "opened the case",
    "assigned": "took ownership",
    "handed_over": "handed the case over",
    "escalated": "escalated to a supervisor",
    "status": "changed the status",
    "resolved": "resolved the case",
    "reopened": "reopened the case",
    "note": "added a note",
    "action": "acted",
    "updated": "corrected the case",
}


def describe_case_event(event: CaseEvent) -> str:
    """One line of a case's history in words."""
    details = event.details or {}
    text = CASE_ACTION_WORDS.get(event.action, event.action)
    if event.action == "opened":
        text += f" ({str(details.get('reason', '')).replace('_', ' ')}, by {details.get('channel', '')})"
    elif event.action in ("assigned", "handed_over") and details.get("owner"):
        text = f"{text}: now owned by {details['owner']}"
    elif event.action == "status":
        text += f" to {str(details.get('status', '')).replace('_', ' ')}"
    elif event.action == "resolved":
        text += f" ({str(details.get('resolution', '')).replace('_', ' ')})"
    elif event.action == "note":
        text += " the customer can see" if details.get("visible_to_customer") else " (internal)"
    elif event.action == "action":
        text = str(details.get("summary", "acted"))
    if details.get("note"):
        text += f" — “{details['note']}”"
    return text
