"""Cases and what agents do about shipments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from contactcentre.models import Case, CaseEvent
from tracking.models import Activity, Shipment
from tracking.services import record_activity


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
                summary=f"Case {case.pk} opened ({case.get_reason_display()}, {case.get_channel_display()})",
                case=case,
            )
    return case
