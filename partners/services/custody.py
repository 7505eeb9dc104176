"""Custody: assigning a shipment to a partner and a partner handing it on."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from partners.adapters.base import NormalizedEvent
from partners.models import Custody, InboundMessage, Partner
from partners.services.driver_links import start_driver_link
from partners.services.inbound import replay_unmatched_mentioning
from partners.services.matching import NotHeld, event_row, find_custodies
from tracking import timeline
from tracking.models import EventKind, Shipment, TrackingEvent
from tracking.services import reconcile_shipment, timeline_rules


class HandOffError(Exception):
    """A hand-off that cannot be made as asked; `field` names the request field that is wrong."""

    def __init__(self, message: str, *, field: str = "to_reference") -> None:
        super().__init__(message)
        self.field = field


class ReferenceInUse(Exception):
    """The partner already holds another open job under this reference."""

    def __init__(self, reference: str) -> None:
        self.reference = reference
        super().__init__(f"another open job is already held under {reference!r}")


class NoHandOffToConfirm(Exception):
    """The partner was handed no job (waiting for its confirmation) under this reference."""


def assign_shipment(
    shipment: Shipment,
    *,
    partner: Partner,
    partner_reference: str,
    group_reference: str = "",
    vehicle_reference: str = "",
    started_at: datetime | None = None,
) -> Custody:
    """Give the shipment to a partner (ending the current holder's custody) and replay its backlog.

    Operations name the partner's reference, so this also confirms a reference that a hand-off
    only proposed. Raises ReferenceInUse when the partner holds another open job under it.
    """
    now = timezone.now()
    # The events' clock-skew rule: a start well in the future is taken as now.
    moment = timeline.effective_time(started_at or now, now, timeline_rules())
    try:
        with transaction.atomic():
            locked = Shipment.objects.select_for_update().get(pk=shipment.pk)
            current = locked.custody.open().first()
            if current and current.partner_id == partner.pk and not current.reference_confirmed:
                custody = _confirm(current, partner_reference)
            elif current and (current.partner_id, current.partner_reference) == (
                partner.pk,
                partner_reference,
            ):
                changed = {"group_reference": group_reference, "vehicle_reference": vehicle_reference}
                changed = {k: v for k, v in changed.items() if v and getattr(current, k) != v}
                if changed:  # the same job moved to another route or van
                    for name, value in changed.items():
                        setattr(current, name, value)
                    current.save(update_fields=list(changed))
                return current
            else:
                if current:
                    current.ended_at = max(moment, current.started_at)
                    current.save(update_fields=["ended_at"])
                custody = Custody.objects.create(
                    partner=partner,
                    shipment=locked,
                    partner_reference=partner_reference,
                    group_reference=group_reference,
                    vehicle_reference=vehicle_reference,
                    started_at=moment,
                )
            reconcile_shipment(locked)
            replay_unmatched_mentioning(partner, [partner_reference, locked.reference, group_reference])
            start_driver_link(custody)
    except IntegrityError as exc:
        raise ReferenceInUse(partner_reference) from exc
    return custody


def _confirm(custody: Custody, partner_reference: str) -> Custody:
    custody.partner_reference = partner_reference
    custody.reference_confirmed = True
    custody.save(update_fields=["partner_reference", "reference_confirmed"])
    return custody


def confirm_handoff(partner: Partner, *, reference: str, partner_reference: str = "") -> Custody:
    """The receiver of a hand-off confirms its own reference for the job (the proposed one by default).

    `reference` names the job as the hand-off proposed it or by the merchant's reference. Reports
    the receiver sent earlier under the confirmed reference are replayed onto the job now.
    """
    final = partner_reference or reference
    try:
        with transaction.atomic():
            pending = (
                Custody.objects.select_for_update()
                .select_related("shipment")
                .filter(partner=partner, ended_at__isnull=True, reference_confirmed=False)
                .filter(Q(partner_reference=reference) | Q(shipment__reference=reference))
                .first()
            )
            if pending is None:
                raise NoHandOffToConfirm(reference)
            custody = _confirm(pending, final)
    except IntegrityError as exc:
        raise ReferenceInUse(final) from exc
    replay_unmatched_mentioning(partner, [final])
    return custody


def hand_off(
    partner: Partner,
    *,
    reference: str,
    to_partner: Partner,
    to_reference: str,
    occurred_at: datetime | None = None,
    note: str = "",
    message: InboundMessage | None = None,
    confirmed: bool = False,
) -> Custody:
    """The current custodian passes the job on; the hand-off is itself a timeline entry.

    `to_reference` is only the sender's proposal: the receiver confirms it (`confirm_handoff`) or
    operations assign one before the receiver's reports under it are matched, so a sender cannot
    bind the receiver's other jobs (nor their earlier messages) to this one. `confirmed` is for
    references Baton itself chose.

    A hand-off dated well in the future is taken as made now (the events' clock-skew rule); its
    timeline entry keeps the claimed time and is flagged `clock_skew`.
    """
    now = timezone.now()
    claimed = occurred_at or now
    moment = timeline.effective_time(claimed, now, timeline_rules())
    held = find_custodies(partner, [reference]).get(reference)
    if held is None or held.ended_at is not None:
        raise NotHeld([reference])
    if to_partner.pk == partner.pk:
        raise HandOffError("a partner cannot hand a shipment to itself", field="to_partner")
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().get(pk=held.shipment_id)
        current = shipment.custody.open().first()
        if current is None or current.pk != held.pk:
            raise NotHeld([reference])
        # As with events: the first holder's report may predate our record of its custody (kept and
        # flagged `before_custody`); a later holder did not have the job yet, so that is refused.
        if (
            moment < current.started_at
            and shipment.custody.filter(started_at__lt=current.started_at).exists()
        ):
            raise HandOffError(
                f"occurred_at is before this partner's custody began ({current.started_at.isoformat()})",
                field="occurred_at",
            )
        boundary = max(moment, current.started_at)
        current.ended_at = boundary
        current.save(update_fields=["ended_at"])
        try:
            with transaction.atomic():
                custody = Custody.objects.create(
                    partner=to_partner,
                    shipment=shipment,
                    partner_reference=to_reference,
                    reference_confirmed=confirmed,
                    started_at=boundary,
                    handed_off_by=current,
                    group_reference="",
                )
        except IntegrityError as exc:
            # Only a reference Baton chose can collide; say nothing of the receiver's other jobs.
            raise HandOffError("this reference cannot be used for the receiving partner") from exc
        handoff = NormalizedEvent(
            reference=reference,
            kind=EventKind.HANDOFF,
            raw_status="handoff",
            occurred_at=claimed,
            note=note,
        )
        row = event_row(
            handoff,
            shipment_id=shipment.pk,
            partner=partner,
            message=message,
            received_at=now,
            fallback_key=f"handoff:{custody.pk}",
            details={"to_partner": to_partner.slug, "to_reference": to_reference, "custody": custody.pk},
        )
        TrackingEvent.objects.bulk_create([row], ignore_conflicts=True)
        reconcile_shipment(shipment)
        # Earlier reports of the receiver are replayed by the merchant's reference only: the
        # proposed reference binds nothing until the receiver confirms it.
        replay_unmatched_mentioning(to_partner, [shipment.reference, *([to_reference] if confirmed else [])])
        start_driver_link(custody)
    return custody
