"""Queues hold what they say, most urgent first, filter by partner, area and age, in constant queries."""

from datetime import timedelta

import pytest
from django.utils import timezone

from contactcentre import queues, services
from contactcentre.models import Case
from partners.models import InboundMessage
from tests.factories import CustodyFactory, PartnerFactory, ShipmentFactory
from tracking.models import TrackingEvent

pytestmark = pytest.mark.django_db


def held(partner, **fields):
    shipment = ShipmentFactory(**fields)
    shipment.current_custody = CustodyFactory(partner=partner, shipment=shipment)
    shipment.save(update_fields=["current_custody"])
    return shipment


def refs(rows):
    return [row.reference for row in rows]


def test_flag_queues_read_reconciliation_flags_and_sweep_alerts(agent):
    swift = PartnerFactory(slug="swift")
    now = timezone.now()
    silent_long = held(
        swift, reference="S-1", alerts=["stale_custodian"], last_event_at=now - timedelta(hours=9)
    )
    silent_short = held(
        swift, reference="S-2", alerts=["stale_custodian"], last_event_at=now - timedelta(hours=3)
    )
    risky = held(swift, reference="R-1", alerts=["late_risk"], late_risk=0.9)
    less_risky = held(swift, reference="R-2", alerts=["late_risk"], late_risk=0.6)
    held(swift, reference="C-1", flags=["conflict"])
    held(swift, reference="F-1", flags=["far_from_destination"])
    held(swift, reference="D-1", flags=["conflict"], status="delivered")  # finished: in no queue
    held(swift, reference="E-1", alerts=["eta_passed"])
    held(swift, reference="A-1", status="attempt_failed")
    held(swift, reference="N-1", flags=["clock_skew"])  # not a queue's flag

    def listed(slug):
        return refs(queues.rows(queues.BY_SLUG[slug], queues.Filters(), agent))

    assert listed("blind_spots") == [silent_long.reference, silent_short.reference]
    assert listed("late_risk") == [risky.reference, less_risky.reference]
    assert listed("conflicts") == ["C-1", "F-1"] or listed("conflicts") == ["F-1", "C-1"]
    assert listed("eta_passed") == ["E-1"]
    assert listed("failed_attempts") == ["A-1"]
    counts = queues.counts(queues.visible_queues(agent), queues.Filters(), agent)
    assert counts["blind_spots"] == 2
    assert counts["conflicts"] == 2
    assert "unmatched" not in counts


def test_filters_by_partner_area_and_age(agent):
    swift, fleet = PartnerFactory(slug="swift"), PartnerFactory(slug="fleet")
    now = timezone.now()
    held(
        swift,
        reference="OLD",
        alerts=["stale_custodian"],
        postcode="SW1A 2AA",
        last_event_at=now - timedelta(hours=6),
    )
    held(
        swift,
        reference="NEW",
        alerts=["stale_custodian"],
        postcode="SW1A 1AA",
        last_event_at=now - timedelta(minutes=5),
    )
    held(
        fleet,
        reference="FLEET",
        alerts=["stale_custodian"],
        postcode="E1 6AN",
        last_event_at=now - timedelta(hours=6),
    )
    held(
        swift,
        reference="SW1",
        alerts=["stale_custodian"],
        postcode="SW1 1AA",
        last_event_at=now - timedelta(hours=6),
    )
    blind = queues.BY_SLUG["blind_spots"]

    assert set(refs(queues.rows(blind, queues.Filters(partner="fleet"), agent))) == {"FLEET"}
    assert set(refs(queues.rows(blind, queues.Filters(area="SW1A"), agent))) == {"OLD", "NEW"}
    assert set(refs(queues.rows(blind, queues.Filters(age="4h"), agent))) == {"OLD", "FLEET", "SW1"}
    assert refs(queues.rows(blind, queues.Filters(partner="swift", area="SW1A", age="4h"), agent)) == ["OLD"]


def test_case_queues_mine_unassigned_escalated_and_past_sla(agent, other_agent, supervisor, held_shipment):
    now = timezone.now()
    mine = services.open_case(held_shipment, channel="phone", reason="late", opened_by=agent, owner=agent)
    nobody = services.open_case(held_shipment, channel="email", reason="late", opened_by=agent)
    overdue = services.open_case(
        held_shipment,
        channel="chat",
        reason="late",
        opened_by=other_agent,
        owner=other_agent,
        sla_due_at=now - timedelta(hours=1),
    )
    services.escalate_case(overdue, by=other_agent)
    done = services.open_case(
        held_shipment,
        channel="phone",
        reason="late",
        opened_by=agent,
        owner=agent,
        sla_due_at=now - timedelta(hours=2),
    )
    services.resolve_case(done, resolution=Case.Resolution.INFORMED, by=agent)

    def ids(slug, user):
        return [c.pk for c in queues.rows(queues.BY_SLUG[slug], queues.Filters(), user)]

    assert ids("my_cases", agent) == [mine.pk]
    assert ids("unassigned", agent) == [nobody.pk]
    assert ids("past_sla", supervisor) == [overdue.pk]
    assert ids("escalated", supervisor) == [overdue.pk]
    assert "escalated" not in [q.slug for q in queues.visible_queues(agent)]


def test_unmatched_messages_are_an_operations_queue(agent, operator):
    partner = PartnerFactory()
    InboundMessage.objects.create(
        partner=partner,
        channel="api",
        body=b"{}",
        content_hash="x",
        received_at=timezone.now(),
        state="unmatched",
    )
    assert "unmatched" not in [q.slug for q in queues.visible_queues(agent)]
    assert "unmatched" in [q.slug for q in queues.visible_queues(operator)]
    assert len(queues.rows(queues.BY_SLUG["unmatched"], queues.Filters(), operator)) == 1


def test_an_unknown_age_filter_is_ignored():
    assert queues.Filters.from_query({"age": "forever", "area": " sw1a "}) == queues.Filters(area="SW1A")


@pytest.mark.parametrize("size", [1, 30])
def test_the_queue_page_costs_the_same_queries_whatever_the_size(
    client, operator, supervisor, size, django_assert_max_num_queries
):
    swift = PartnerFactory(slug="swift")
    for _n in range(size):
        shipment = held(swift, alerts=["stale_custodian"], flags=["conflict"], status="attempt_failed")
        services.open_case(
            shipment,
            channel="phone",
            reason="late",
            opened_by=supervisor,
            sla_due_at=timezone.now() - timedelta(hours=1),
        )
    for user in (operator, supervisor):
        client.force_login(user)
        for slug in ["blind_spots", "conflicts", "failed_attempts", "past_sla", "unassigned"]:
            with django_assert_max_num_queries(17):
                assert client.get(f"/console/?queue={slug}").status_code == 200


@pytest.mark.parametrize("size", [1, 40])
def test_the_shipment_and_case_pages_cost_the_same_queries_whatever_the_history(
    client, operator, supervisor, held_shipment, size, django_assert_max_num_queries
):
    partner = held_shipment.current_custody.partner
    now = timezone.now()
    case = services.open_case(held_shipment, channel="phone", reason="late", opened_by=supervisor)
    for n in range(size):
        message = InboundMessage.objects.create(
            partner=partner, channel="api", body=b"{}", content_hash=f"h{n}", received_at=now
        )
        TrackingEvent.objects.create(
            shipment=held_shipment, partner=partner, custody=held_shipment.current_custody, message=message,
            kind="status", status="in_transit", occurred_at=now - timedelta(minutes=n), received_at=now,
            dedupe_key=f"k{n}", flags=["conflict"],
        )  # fmt: skip
        services.add_note(case, body=f"note {n}", by=supervisor)
        services.open_case(
            held_shipment, channel="email", reason="late", opened_by=supervisor, owner=supervisor
        )
    for user in (operator, supervisor):
        client.force_login(user)
        with django_assert_max_num_queries(14):
            assert client.get("/console/shipments/ORD-1/").status_code == 200
        with django_assert_max_num_queries(17):
            assert client.get(f"/console/cases/{case.pk}/").status_code == 200
