"""Queues hold what they say, most urgent first, filter by partner, area and age, in constant queries."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
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


def _queries(client, path):
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured.captured_queries)


def test_the_queue_page_costs_the_same_queries_whatever_the_size(client, operator, supervisor):
    """Exactly the same number with empty queues as with 30 rows in each (the budget of issue 13)."""
    swift = PartnerFactory(slug="swift")
    slugs = [q.slug for q in queues.QUEUES]
    paths = [f"/console/?queue={slug}" for slug in slugs] + [
        f"/console/?queue={slug}&partner=swift&area=E1&age=1h" for slug in slugs
    ]

    def measured():
        found = {}
        for user in (operator, supervisor):
            client.force_login(user)
            found[user.username] = {path: _queries(client, path) for path in paths}
        return found

    empty = measured()
    for _n in range(30):
        shipment = held(
            swift, alerts=["stale_custodian", "late_risk", "eta_passed"], flags=["conflict"],
            status="attempt_failed", postcode="E1 6AN",
        )  # fmt: skip
        services.open_case(
            shipment,
            channel="phone",
            reason="late",
            opened_by=supervisor,
            owner=supervisor,
            sla_due_at=timezone.now() - timedelta(hours=1),
        )
        InboundMessage.objects.create(
            partner=swift, channel="api", body=b"{}", content_hash=f"u{_n}", received_at=timezone.now(),
            state="unmatched",
        )  # fmt: skip
    assert measured() == empty
    assert set(empty[supervisor.username].values()) == {empty[supervisor.username][paths[0]]}


def test_the_shipment_and_case_pages_cost_the_same_queries_whatever_the_history(
    client, operator, supervisor, held_shipment
):
    """A bare shipment (no holder, no events, no cases) and one with a long history cost the same."""
    bare = ShipmentFactory(reference="BARE-1")
    bare_case = services.open_case(bare, channel="phone", reason="late", opened_by=supervisor)

    def measured(reference, case):
        found = {}
        for user in (operator, supervisor):
            client.force_login(user)
            found[user.username] = (
                _queries(client, f"/console/shipments/{reference}/"),
                _queries(client, f"/console/cases/{case.pk}/"),
            )
        return found

    before = measured(bare.reference, bare_case)
    partner = held_shipment.current_custody.partner
    now = timezone.now()
    case = services.open_case(held_shipment, channel="phone", reason="late", opened_by=supervisor)
    for n in range(40):
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
    held_shipment.proof = {"signed_by": "A. Neighbour", "photo": "proof/x.jpg"}
    held_shipment.save(update_fields=["proof"])
    assert measured(held_shipment.reference, case) == before


def test_counts_stop_at_the_cap_and_the_page_says_so(client, agent, monkeypatch):
    monkeypatch.setattr(queues, "COUNT_CAP", 2)
    swift = PartnerFactory(slug="swift")
    for _n in range(4):
        held(swift, alerts=["stale_custodian"])
    held(swift, flags=["conflict"])

    found = queues.counts(queues.visible_queues(agent), queues.Filters(), agent)

    assert (found["blind_spots"], found["conflicts"], found["late_risk"]) == (3, 1, 0)
    client.force_login(agent)
    page = client.get("/console/?queue=blind_spots").content.decode()
    assert '2+<span class="visually-hidden"> items</span>' in page
