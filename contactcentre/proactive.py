"""Proactive actions: when the sweep raises a flag on a shipment, operations' rules act, once per episode.

`on_shipment_change` listens to `tracking.changes` (subscribed in `ContactcentreConfig.ready`). When
a change raises one of the sweep's flags, it runs the rules for that flag and the holder's partner
kind inside the sweep's transaction, so what a rule queues commits with the flag. Each action is
claimed first in `ProactiveAction` (unique per rule, shipment and episode), so a flag that clears
and comes back within the same episode, or a second sweep, does nothing new.

An episode is one occurrence of the problem a flag points at (docs/flags.md):

- `stale_custodian`: the custody and when its holder was last heard (a new report starts a new one);
- `unacknowledged`: the custody (a holder acknowledges a job once);
- `eta_passed`: the ETA that passed (a new ETA that passes too is a new episode);
- `late_risk`: the promised window (a new window is a new episode).

The actions: tell the customer "running late" (customer notifications), put the shipment in the
agents' queue (an unassigned proactive case, with the reason in words), chase the holder on its own
channel (`services.chase_holder`), and escalate to supervisors when the same holder goes silent a
second time on the same job. Each is on the shipment's timeline as the rule's own entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from contactcentre import notifications, services
from contactcentre.models import SILENCE_FLAGS, ActionRule, Case, MessageTemplate, ProactiveAction
from tracking import changes
from tracking.flags import SWEEP_FLAGS, Flag
from tracking.models import Activity, OutboundMessage, Shipment
from tracking.services import record_activity

log = logging.getLogger(__name__)

Action = ActionRule.Action
# (name, flag, action): what a fresh install does (the data migration seeds them; admin edits them).
DEFAULT_RULES: list[tuple[str, str, str]] = [
    ("Chase a silent holder", Flag.STALE_CUSTODIAN, Action.CHASE),
    ("Escalate a holder silent a second time", Flag.STALE_CUSTODIAN, Action.ESCALATE),
    ("Chase a holder that never acknowledged", Flag.UNACKNOWLEDGED, Action.CHASE),
    ("Queue a passed ETA for an agent", Flag.ETA_PASSED, Action.QUEUE),
    ("Tell the customer when the ETA has passed", Flag.ETA_PASSED, Action.NOTIFY_CUSTOMER),
    ("Tell the customer when delivery is at risk of being late", Flag.LATE_RISK, Action.NOTIFY_CUSTOMER),
]
# The order actions run in for one flag: the customer first, the partner last, escalation after it.
ACTION_ORDER = [Action.NOTIFY_CUSTOMER, Action.QUEUE, Action.CHASE, Action.ESCALATE]
FLAG_ORDER = [Flag.STALE_CUSTODIAN, Flag.UNACKNOWLEDGED, Flag.ETA_PASSED, Flag.LATE_RISK]


def ensure_default_rules() -> int:
    """Create the default rules that are missing (by name); returns how many were created."""
    created = 0
    for name, flag, action in DEFAULT_RULES:
        if not ActionRule.objects.filter(flag=flag, action=action, partner_kind="").exists():
            ActionRule.objects.get_or_create(name=name, defaults={"flag": flag, "action": action})
            created += 1
    return created


# --- episodes and reasons -------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat() if moment is not None else "none"


def episode_of(shipment: Shipment, flag: str) -> str:
    """What makes this occurrence of `flag` on the shipment one episode (see the module docstring)."""
    if flag == Flag.STALE_CUSTODIAN:
        return f"custody {shipment.current_custody_id} silent since {_iso(shipment.last_heard_at)}"
    if flag == Flag.UNACKNOWLEDGED:
        return f"custody {shipment.current_custody_id} never reported"
    if flag == Flag.ETA_PASSED:
        return f"eta {_iso(shipment.eta or shipment.eta_latest)}"
    return f"window {_iso(shipment.promised_from)} to {_iso(shipment.promised_until)}"


def _silences_of(custody_id: int | None) -> str:
    """The prefix every silence episode of one custody starts with."""
    return f"custody {custody_id} "


def _when(moment: datetime | None) -> str:
    return f"{timezone.localtime(moment):%d %b %H:%M}" if moment is not None else "an unknown time"


def _duration(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def _holder_name(shipment: Shipment) -> str:
    custody = shipment.current_custody
    return custody.partner.name if custody is not None else "The holder"


def reason_for(shipment: Shipment, flag: str, *, now: datetime | None = None) -> str:
    """Why the shipment needs attention, in words an agent (or supervisor) can act on."""
    now = now or timezone.now()
    holder = _holder_name(shipment)
    if flag == Flag.STALE_CUSTODIAN:
        heard = shipment.last_heard_at
        ago = f" ({_duration(now - heard)} ago)" if heard else ""
        return (
            f"{holder} has not been heard from since {_when(heard)}{ago}, longer than its silence threshold."
        )
    if flag == Flag.UNACKNOWLEDGED:
        custody = shipment.current_custody
        started = custody.started_at if custody is not None else None
        return f"{holder} was given the job at {_when(started)} and has not reported since."
    if flag == Flag.ETA_PASSED:
        return (
            f"The ETA ({_when(shipment.eta or shipment.eta_latest)}) has passed and the job is not finished."
        )
    risk = round((shipment.late_risk or 0) * 100)
    text = f"{risk}% risk of missing the promised window (until {_when(shipment.promised_until)})."
    if shipment.late_risk_explanation:
        text += f" {shipment.late_risk_explanation}"
    return text


CASE_REASONS: dict[str, str] = {
    Flag.STALE_CUSTODIAN: Case.Reason.HOLDER_SILENT,
    Flag.UNACKNOWLEDGED: Case.Reason.HOLDER_SILENT,
    Flag.ETA_PASSED: Case.Reason.LATE,
    Flag.LATE_RISK: Case.Reason.LATE,
}


# --- the actions ------------------------------------------------------------------------------------

Outcome = tuple[str, Activity | None]


def _open_case(shipment: Shipment) -> Case | None:
    return Case.objects.filter(shipment=shipment).exclude(status=Case.Status.RESOLVED).order_by("pk").first()


def _queue_case(
    shipment: Shipment, *, rule: str, flag: str, reason: str
) -> tuple[Case, Activity | None, bool]:
    """The shipment's open case, else a new unassigned proactive one: (case, its entry, newly opened)."""
    case = _open_case(shipment)
    if case is not None:
        return case, None, False
    case = services.open_case(
        shipment, channel=Case.Channel.PROACTIVE, reason=CASE_REASONS[flag], summary=reason, rule=rule
    )
    opened = Activity.objects.filter(case=case, kind="case_opened").first()
    return case, opened, True


def lateness_episode(shipment: Shipment) -> str:
    """What the customer is told is late: the deadline they were given (the latest ETA, else the
    promised window). `eta_passed` and `late_risk` raised together tell the customer once."""
    return f"late for {_iso(shipment.eta_latest or shipment.eta or shipment.promised_until)}"


def notify_customer(rule: ActionRule, shipment: Shipment, flag: str, episode: str) -> Outcome:
    """Tell the customer the delivery is running late; if nobody can be told, say so on the timeline."""
    told = notifications.notify(
        shipment,
        purpose=MessageTemplate.Purpose.RUNNING_LATE,
        episode=lateness_episode(shipment),
        rule=rule.name,
    )
    if told.messages:
        count = len(told.messages)
        return (
            f"running-late message queued to {count} subscriber{'s' if count > 1 else ''}",
            told.activities[0],
        )
    if told.already_told:
        return "the customer was already told about this lateness", None
    activity = record_activity(
        shipment,
        kind="notification",
        actor=Activity.Actor.RULE,
        actor_label=rule.name,
        summary=f"Running late message not sent: {told.why_not}",
        details={"purpose": MessageTemplate.Purpose.RUNNING_LATE, "outcome": "not_sent", "why": told.why_not},
    )
    return f"not sent: {told.why_not}", activity


def queue_for_agents(rule: ActionRule, shipment: Shipment, flag: str, episode: str) -> Outcome:
    """An unassigned proactive case with the reason in words; an open case gets the reason instead."""
    reason = reason_for(shipment, flag)
    case, opened, new = _queue_case(shipment, rule=rule.name, flag=flag, reason=reason)
    if new:
        return f"case {case.pk} opened for the agents' queue", opened
    services.record_case_event(case, action="action", label=rule.name, kind="queued", summary=reason)
    activity = record_activity(
        shipment,
        kind="queued",
        actor=Activity.Actor.RULE,
        actor_label=rule.name,
        summary=f"Added to case {case.pk}: {reason}",
        case=case,
    )
    return f"added to open case {case.pk}", activity


def chase(rule: ActionRule, shipment: Shipment, flag: str, episode: str) -> Outcome:
    """Chase the holder on its own channel; with no channel, an agent is asked to call instead."""
    reason = reason_for(shipment, flag)
    try:
        result = services.chase_holder(shipment, rule=rule.name, case=_open_case(shipment), note=reason)
    except services.CaseError as exc:
        case, _opened, _new = _queue_case(shipment, rule=rule.name, flag=flag, reason=f"{reason} {exc}")
        activity = record_activity(
            shipment,
            kind="chase",
            actor=Activity.Actor.RULE,
            actor_label=rule.name,
            summary=f"Could not chase: {exc}",
            case=case,
            details={"outcome": "not_sent", "why": str(exc)},
        )
        return f"not sent ({exc}); case {case.pk} asks an agent to call", activity
    channel = services.CHANNEL_WORDS.get(result.activity.channel, "a driver link")
    return f"chase queued by {channel}", result.activity


def escalate(rule: ActionRule, shipment: Shipment, flag: str, episode: str) -> Outcome:
    """On the holder's second silence on this job, the shipment's case goes to the supervisors."""
    earlier = (
        ProactiveAction.objects.filter(
            shipment=shipment,
            flag__in=SILENCE_FLAGS,
            episode__startswith=_silences_of(shipment.current_custody_id),
        )
        .exclude(episode=episode)
        .exists()
    )
    if not earlier:
        return "first silence of this holder on this job: not escalated", None
    again = f"{_holder_name(shipment)} has gone silent again on this job."
    case, _opened, _new = _queue_case(
        shipment, rule=rule.name, flag=flag, reason=f"{again} {reason_for(shipment, flag)}"
    )
    if case.escalated:
        activity = record_activity(
            shipment,
            kind="escalation",
            actor=Activity.Actor.RULE,
            actor_label=rule.name,
            summary=f"Silent again; case {case.pk} is already with the supervisors",
            case=case,
        )
        return f"case {case.pk} already escalated", activity
    services.escalate_case(case, rule=rule.name, note=again)
    escalation = Activity.objects.filter(case=case, kind="escalation").order_by("-pk").first()
    return f"case {case.pk} escalated to the supervisors", escalation


ACTIONS: dict[str, Callable[[ActionRule, Shipment, str, str], Outcome]] = {
    Action.NOTIFY_CUSTOMER: notify_customer,
    Action.QUEUE: queue_for_agents,
    Action.CHASE: chase,
    Action.ESCALATE: escalate,
}


# --- choosing and running rules ---------------------------------------------------------------------


def choose_rules(rules: Iterable[ActionRule], flag: str, partner_kind: str) -> list[ActionRule]:
    """The rules that act on `flag` for a holder of `partner_kind`, one per action, in action order.

    A rule for the holder's kind overrides the rule for every holder with the same action; a
    switched-off rule acts for nobody (so a kind's switched-off rule silences that action for it).
    """
    chosen: dict[str, ActionRule] = {}
    for rule in rules:
        if rule.flag != flag or rule.partner_kind not in ("", partner_kind):
            continue
        current = chosen.get(rule.action)
        if current is None or (rule.partner_kind and not current.partner_kind):
            chosen[rule.action] = rule
    return [chosen[action] for action in ACTION_ORDER if action in chosen and chosen[action].enabled]


def act(rule: ActionRule, shipment: Shipment, flag: str) -> ProactiveAction | None:
    """Take the rule's action for this episode of the flag, unless it was taken already."""
    episode = episode_of(shipment, flag)
    try:
        with transaction.atomic():
            record = ProactiveAction.objects.create(rule=rule, shipment=shipment, flag=flag, episode=episode)
    except IntegrityError:
        return None  # this rule already acted on this episode
    try:
        with transaction.atomic():
            outcome, activity = ACTIONS[rule.action](rule, shipment, flag, episode)
    except Exception as exc:
        # One shipment's failure must not undo the flags and actions of the others in the sweep's batch.
        log.exception("rule %r could not act on shipment %s", rule.name, shipment.pk)
        outcome, activity = f"failed: {type(exc).__name__}: {exc}", None
    record.outcome = outcome[:300]
    record.activity_id = activity.pk if activity is not None else None
    record.save(update_fields=["outcome", "activity"])
    return record


def run_rules(shipment: Shipment, flags: Iterable[str]) -> list[ProactiveAction]:
    """Run the rules for each newly raised sweep flag on the shipment (inside the caller's transaction)."""
    raised = [flag for flag in FLAG_ORDER if flag in set(flags)]
    if not raised or shipment.is_terminal:
        return []
    rules = list(ActionRule.objects.filter(flag__in=raised))
    if not rules:
        return []
    custody = shipment.current_custody
    kind = custody.partner.kind if custody is not None else ""
    taken = []
    for flag in raised:
        for rule in choose_rules(rules, flag, kind):
            record = act(rule, shipment, flag)
            if record is not None:
                taken.append(record)
    return taken


def on_shipment_change(shipment: Shipment, change: changes.ShipmentChange) -> None:
    """The `tracking.changes` listener: act when the sweep raises a flag (reconciliation only clears them)."""
    raised = change.flags_raised & SWEEP_FLAGS
    if raised:
        run_rules(shipment, raised)


# --- a chase that failed for good --------------------------------------------------------------------


def on_chase_failed(message: OutboundMessage) -> None:
    """The outbox gave up on a chase: an agent is asked to call the holder (never silently dropped)."""
    if message.shipment_id is None:
        return
    shipment = Shipment.objects.select_related("current_custody__partner").get(pk=message.shipment_id)
    chased = Activity.objects.filter(outbound=message, kind="chase").first()
    rule = chased.actor_label if chased is not None and chased.actor == Activity.Actor.RULE else ""
    words = services.CHANNEL_WORDS.get(message.transport, message.transport)
    why = f"The chase by {words} failed for good ({message.last_error}): call the holder."
    case = _open_case(shipment)
    if case is None and not shipment.is_terminal:
        case = services.open_case(
            shipment,
            channel=Case.Channel.PROACTIVE,
            reason=Case.Reason.HOLDER_SILENT,
            summary=why,
            rule=rule or "Failed chase",
        )
    elif case is not None:
        services.record_case_event(
            case, action="action", label=rule or "Baton", kind="chase_failed", summary=why
        )
    record_activity(
        shipment,
        kind="chase_failed",
        actor=Activity.Actor.SYSTEM,
        actor_label="Baton",
        summary=why,
        outbound=message,
        case=case,
    )
