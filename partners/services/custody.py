"""Custody: assigning a shipment to a partner and a partner handing it on."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from partners.adapters.base import NormalizedEvent
from partners.models import Custody, InboundMessage, Partner
from partners.services.driver_links import start_driver_link
from partners.services.inbound import replay_messages
from partners.services.matching import NotHeld, event_row, find_custodies
from tracking import timeline
from tracking.models import EventKind, Shipment, TrackingEvent
from tracking.services import reconcile_shipment, timeline_rules


class HandOffError(Exception):
    """A hand-off that cannot be made as asked (for example to an unknown partner)."""


def assign_shipment(
    shipment: Shipment,
    *,
    partner: Partner,
    partner_reference: str,
    group_reference: str = "",
    started_at: datetime | None = None,
) -> Custody:
    """Give the shipment to a partner (ending the current holder's custody) and replay its backlog."""
    now = timezone.now()
    # The events' clock-skew rule: a start well in the future is taken as now.
    moment = timeline.effective_time(started_at or now, now, timeline_rules())
    with transaction.atomic():
        locked = Shipment.objects.select_for_update().get(pk=shipment.pk)
        current = locked.custody.open().first()
        if current and (current.partner_id, current.partner_reference) == (partner.pk, partner_reference):
            return current
        if current:
            current.ended_at = max(moment, current.started_at)
            current.save(update_fields=["ended_at"])
        custody = Custody.objects.create(
            partner=partner,
            shipment=locked,
            partner_reference=partner_reference,
            group_reference=group_reference,
            started_at=moment,
        )
        reconcile_shipment(locked)
        replay_messages(partner=partner, states=[InboundMessage.State.UNMATCHED])
        start_driver_link(custody)
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
) -> Custody:
    """The current custodian passes the job on; the hand-off is itself a timeline entry.

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
        raise HandOffError("a partner cannot hand a shipment to itself")
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().get(pk=held.shipment_id)
        current = shipment.custody.open().first()
        if current is None or current.pk != held.pk:
            raise NotHeld([reference])
        if moment < current.started_at:
            raise HandOffError("occurred_at is before this partner's custody began")
        current.ended_at = moment
        current.save(update_fields=["ended_at"])
        try:
            with transaction.atomic():
                custody = Custody.objects.create(
                    partner=to_partner,
                    shipment=shipment,
                    partner_reference=to_reference,
                    started_at=moment,
                    handed_off_by=current,
                    group_reference="",
                )
        except IntegrityError as exc:
            raise HandOffError(f"{to_partner.slug} already holds another job as {to_reference!r}") from exc
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
        replay_messages(partner=to_partner, states=[InboundMessage.State.UNMATCHED])
        start_driver_link(custody)
    return custody
