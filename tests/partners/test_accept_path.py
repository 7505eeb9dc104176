"""The accept path: only the insert on the request (the relay publishes), a cached custody check."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from hub.celery import app as celery_app
from partners import services
from partners.models import InboundMessage

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker_mode(settings):
    """As in production: a broker (not eager) and the relay on; tasks published are then run here."""
    settings.BATON = {**settings.BATON, "RELAY": True}
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = True


def post_event(client, minute: int) -> int:
    body = {
        "reference": "SWIFT-77",
        "status": "in_transit",
        "event_id": f"e{minute}",
        "occurred_at": (timezone.now() - timedelta(minutes=60 - minute)).isoformat(),
    }
    response = client.post("/api/partner/v1/events", body, format="json")
    assert response.status_code == 202, response.content
    return response.json()["message_id"]


def test_accepted_events_wait_for_the_relay_which_publishes_each_once(
    broker_mode, custody, partner_client, monkeypatch
):
    published: list[list[int]] = []
    monkeypatch.setattr(
        "partners.tasks.process_inbound_messages.delay", lambda ids: published.append(list(ids))
    )
    client = partner_client(custody.partner)
    ids = [post_event(client, n) for n in range(3)]
    assert published == []  # nothing but the insert on the request path
    handoff = services.record_inbound(
        custody.partner, channel=InboundMessage.Channel.HANDOFF, body=b"{}", headers={}, enqueue=False
    )
    old = services.record_inbound(custody.partner, channel=InboundMessage.Channel.API, body=b"{}", headers={})
    InboundMessage.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(hours=1))

    relay = services.Relay(window=timedelta(seconds=30))
    assert relay.run_once() == 3
    assert relay.run_once() == 0  # published already, still waiting for a worker
    later = post_event(client, 10)
    assert relay.run_once() == 1

    assert published == [ids, [later]]
    assert all(handoff.pk not in batch for batch in published)  # applied by the request that stored it
    assert services.sweep_unprocessed() == 1  # older than the window: left to the sweep
    assert published[-1] == [old.pk]


def test_while_a_full_batch_waits_for_the_workers_new_messages_gather_into_fuller_batches(
    broker_mode, custody, partner_client, monkeypatch
):
    published: list[list[int]] = []
    monkeypatch.setattr(
        "partners.tasks.process_inbound_messages.delay", lambda ids: published.append(list(ids))
    )
    client = partner_client(custody.partner)
    relay = services.Relay(window=timedelta(seconds=30), hold=timedelta(seconds=1), batch=2)

    first = [post_event(client, n) for n in range(2)]
    assert relay.run_once(now=0.0) == 2  # idle workers: published at once
    third = post_event(client, 2)
    assert relay.run_once(now=0.1) == 0  # a full batch still waits for a worker: held
    fourth = post_event(client, 3)
    assert relay.run_once(now=0.2) == 2  # a full batch gathered
    fifth = post_event(client, 4)
    assert relay.run_once(now=0.3) == 0
    assert relay.run_once(now=1.3) == 1  # held no longer than `hold`
    InboundMessage.objects.update(state=InboundMessage.State.PROCESSED)  # the workers caught up
    sixth = post_event(client, 5)
    assert relay.run_once(now=1.4) == 1

    assert published == [first, [third, fourth], [fifth], [sixth]]


def test_the_relay_command_gets_waiting_messages_onto_their_timeline(broker_mode, custody, partner_client):
    ids = [post_event(partner_client(custody.partner), n) for n in range(2)]
    assert set(InboundMessage.objects.filter(pk__in=ids).values_list("state", flat=True)) == {"received"}

    celery_app.conf.task_always_eager = True  # the "worker" runs what the relay publishes, here
    call_command("relay", "--once")

    assert set(InboundMessage.objects.filter(pk__in=ids).values_list("state", flat=True)) == {"processed"}
    assert custody.shipment.events.count() == 2
    assert json.loads(bytes(InboundMessage.objects.get(pk=ids[0]).body))["event_id"] == "e0"


def test_without_a_broker_each_message_is_processed_at_once(custody, partner_client, settings):
    settings.BATON = {**settings.BATON, "RELAY": True}  # eager Celery: the relay is not needed
    message_id = post_event(partner_client(custody.partner), 1)

    assert InboundMessage.objects.get(pk=message_id).state == "processed"


def test_a_reference_once_found_held_is_not_looked_up_again_and_an_unknown_one_still_gets_404(
    broker_mode, custody, partner_client
):
    client = partner_client(custody.partner)
    post_event(client, 1)  # looks the custody up
    again: list[str] = []
    with connection.execute_wrapper(lambda execute, sql, *args: again.append(sql) or execute(sql, *args)):
        post_event(client, 2)
    unknown = client.post(
        "/api/partner/v1/events",
        {"reference": "NOT-MINE", "status": "in_transit", "occurred_at": timezone.now().isoformat()},
        format="json",
    )

    assert [sql.split()[0] for sql in again] == ["INSERT"]  # the message, no custody lookup
    assert unknown.status_code == 404


def test_the_accept_paths_custody_check_finds_exactly_the_shipments_matching_would(custody):
    from partners.adapters.base import NormalizedEvent
    from partners.services.matching import held_shipments
    from tests.factories import CustodyFactory, ShipmentFactory

    partner = custody.partner
    CustodyFactory(partner=partner, partner_reference="OLD-1", ended_at=timezone.now())  # held, closed
    proposed = CustodyFactory(partner=partner, partner_reference="PROPOSED-1", reference_confirmed=False)
    CustodyFactory(partner_reference="THEIRS-1", shipment=ShipmentFactory(reference="ORD-THEIRS"))
    # A reference used again for a later job: the open custody wins, as in matching.
    CustodyFactory(partner=partner, partner_reference="AGAIN-1", ended_at=timezone.now())
    again = CustodyFactory(partner=partner, partner_reference="AGAIN-1")
    asked = {
        "SWIFT-77",  # its own reference
        custody.shipment.reference,  # the merchant's
        "OLD-1",
        "PROPOSED-1",  # a hand-off's proposal, not confirmed: only the merchant's reference counts
        proposed.shipment.reference,
        "THEIRS-1",  # another partner's job
        "ORD-THEIRS",
        "AGAIN-1",
        "NOWHERE",
        "",
    }

    services.record_events(
        partner,
        [NormalizedEvent(reference="SWIFT-77", kind="location", latitude=51.5, longitude=-0.1)],
        message=services.record_inbound(partner, channel="api", body=b"{}", headers={}, enqueue=False),
    )

    held = held_shipments(partner, asked)

    found = services.find_custodies(partner, asked)
    assert {r: shipment for r, (shipment, _events) in held.items()} == {
        reference: found[reference].shipment_id for reference in asked if reference in found
    }
    own = {"SWIFT-77", "OLD-1", "AGAIN-1"}
    assert set(held) == own | {custody.shipment.reference, proposed.shipment.reference}
    assert held["AGAIN-1"] == (again.shipment_id, 0)
    assert held["SWIFT-77"] == held[custody.shipment.reference] == (custody.shipment_id, 1)
