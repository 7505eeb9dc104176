"""Processing one event costs a fixed number of queries, whatever else the tables hold."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from partners import services
from partners.models import Custody, InboundMessage, Partner
from tests.factories import PartnerFactory, ShipmentFactory
from tracking.models import Shipment, TrackingEvent

# Processing one stored message that carries one event, as a worker does it:
#   1 load the message with its partner     2 count the attempt
#   3 find the partner's custody            4 BEGIN
#   5 lock the shipment row (FOR UPDATE)    6 load the shipment's events (known facts)
#   7 insert the new event                  8 load the shipment's custody chain
#   9 update the entries whose place changed 10 save the shipment's reconciled state
#  11 COMMIT                                12 mark the message processed
# The same on SQLite and PostgreSQL.
QUERIES_PER_EVENT = 12

pytestmark = pytest.mark.django_db(transaction=True)

MORNING = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
STATUSES = ["picked_up", "in_transit", "out_for_delivery", "arriving", "delivered"]


def add_other_shipments(count: int, partner: Partner) -> None:
    """Other shipments with a full day of events each, written in bulk."""
    start = Shipment.objects.count()
    shipments = [ShipmentFactory.build(reference=f"OTHER-{start + i}") for i in range(count)]
    for i, shipment in enumerate(shipments):
        shipment.tracking_token_hash = f"other-{start + i}"
    Shipment.objects.bulk_create(shipments)
    shipments = list(Shipment.objects.filter(reference__startswith="OTHER-").order_by("id"))[start - 1 :]
    Custody.objects.bulk_create(
        Custody(partner=partner, shipment=s, partner_reference=f"O-{s.pk}", started_at=MORNING)
        for s in shipments
    )
    TrackingEvent.objects.bulk_create(
        TrackingEvent(
            shipment=s,
            partner=partner,
            kind="status",
            status=status,
            occurred_at=MORNING + timedelta(minutes=10 * n),
            received_at=MORNING + timedelta(minutes=10 * n),
            dedupe_key=f"{s.pk}-{n}",
            sequence=n + 1,
        )
        for s in shipments
        for n, status in enumerate(STATUSES)
    )


def one_event_message(partner: Partner, reference: str, status: str, minute: int) -> InboundMessage:
    body = {
        "reference": reference,
        "event_id": f"{reference}-{minute}",
        "status": status,
        "occurred_at": (MORNING + timedelta(minutes=minute)).isoformat(),
    }
    return services.record_inbound(
        partner, channel=InboundMessage.Channel.API, body=json.dumps(body).encode(), headers={}, enqueue=False
    )


def queries_to_process(message: InboundMessage) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert services.process_inbound(message.pk) == "processed"
    return [q["sql"] for q in captured.captured_queries]


@pytest.fixture
def journey(db) -> Custody:
    """The shipment under test, a few events into its day."""
    courier = PartnerFactory(slug="swift")
    custody = Custody.objects.create(
        partner=courier,
        shipment=ShipmentFactory(reference="ORD-1"),
        partner_reference="SW-1",
        started_at=MORNING,
    )
    for minute, status in enumerate(STATUSES[:2]):
        services.process_inbound(one_event_message(courier, "SW-1", status, minute).pk)
    return custody


def test_one_event_costs_the_same_queries_beside_1_or_200_other_shipments(journey):
    others = PartnerFactory(slug="other-fleet")
    add_other_shipments(1, others)
    with_one_other = queries_to_process(one_event_message(journey.partner, "SW-1", "out_for_delivery", 30))

    add_other_shipments(199, others)
    assert TrackingEvent.objects.exclude(shipment=journey.shipment).count() == 200 * len(STATUSES)
    with_200_others = queries_to_process(one_event_message(journey.partner, "SW-1", "arriving", 40))

    assert len(with_one_other) == len(with_200_others) == QUERIES_PER_EVENT
    journey.shipment.refresh_from_db()
    assert journey.shipment.status == "arriving"
    assert list(journey.shipment.events.order_by("sequence").values_list("sequence", flat=True)) == [
        1,
        2,
        3,
        4,
    ]


def test_every_query_of_one_event_is_narrowed_to_its_message_partner_or_shipment(journey):
    add_other_shipments(20, PartnerFactory(slug="other-fleet"))

    queries = queries_to_process(one_event_message(journey.partner, "SW-1", "out_for_delivery", 30))

    for sql in queries:
        if sql.split()[0].upper() in {"SELECT", "UPDATE"}:
            assert "WHERE" in sql.upper(), sql


def test_a_late_event_that_renumbers_the_whole_timeline_still_costs_the_same(journey):
    on_time = queries_to_process(one_event_message(journey.partner, "SW-1", "out_for_delivery", 30))

    # Before everything else: every stored entry moves one place down, in one bulk update.
    late = queries_to_process(one_event_message(journey.partner, "SW-1", "info_received", -30))

    assert len(late) == len(on_time)
    assert list(journey.shipment.events.order_by("sequence").values_list("status", flat=True)) == [
        "info_received",
        "picked_up",
        "in_transit",
        "out_for_delivery",
    ]
