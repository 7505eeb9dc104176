import json

import pytest

from partners.models import InboundMessage
from tests.clock import at
from tracking.models import TrackingEvent

EVENTS_URL = "/api/partner/v1/events"


def post(client, body, **extra):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(EVENTS_URL, data=data, content_type="application/json", **extra)


def event(**overrides):
    return {
        "reference": "SWIFT-77",
        "event_id": "ev-1",
        "status": "out_for_delivery",
        "occurred_at": at(60),
        **overrides,
    }


pytestmark = pytest.mark.django_db(transaction=True)


def test_single_event_is_accepted_and_lands_on_the_timeline(custody, partner_client):
    response = post(partner_client(custody.partner), event())

    assert response.status_code == 202
    assert response.json()["accepted"] == 1
    custody.shipment.refresh_from_db()
    assert custody.shipment.status == "out_for_delivery"
    message = InboundMessage.objects.get(pk=response.json()["message_id"])
    assert message.state == InboundMessage.State.PROCESSED
    assert json.loads(bytes(message.body)) == event()


def test_batch_of_events_is_accepted(custody, partner_client):
    batch = {"events": [event(event_id="a", status="picked_up", occurred_at=at(0)), event()]}

    response = post(partner_client(custody.partner), batch)

    assert response.status_code == 202
    assert response.json()["accepted"] == 2
    assert TrackingEvent.objects.filter(shipment=custody.shipment).count() == 2


def test_duplicate_event_is_acknowledged_but_recorded_once(custody, partner_client):
    client = partner_client(custody.partner)

    assert post(client, event()).status_code == 202
    assert post(client, event()).status_code == 202

    assert TrackingEvent.objects.filter(shipment=custody.shipment).count() == 1
    assert InboundMessage.objects.count() == 2


def test_same_fact_without_event_id_is_recorded_once(custody, partner_client):
    client = partner_client(custody.partner)
    post(client, event(event_id=""))
    post(client, event(event_id=""))

    assert TrackingEvent.objects.filter(shipment=custody.shipment).count() == 1


def test_unknown_api_key_gets_401_with_json_error_and_stores_nothing(custody, client):
    response = client.post(
        EVENTS_URL,
        data=json.dumps(event()),
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer nope",
    )

    assert response.status_code == 401
    assert response.json()["error"] == "authentication_failed"
    assert InboundMessage.objects.count() == 0


def test_missing_api_key_gets_401(custody, client):
    response = client.post(EVENTS_URL, data=json.dumps(event()), content_type="application/json")

    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


def test_malformed_body_gets_400_naming_the_field_and_keeps_the_raw_message(custody, partner_client):
    response = post(partner_client(custody.partner), event(occurred_at="yesterday-ish"))

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert "occurred_at" in body["fields"]
    assert body["message"].startswith("occurred_at:")
    assert TrackingEvent.objects.count() == 0
    message = InboundMessage.objects.get()
    assert message.state == InboundMessage.State.REJECTED
    assert b"yesterday-ish" in bytes(message.body)


def test_bad_field_in_a_batch_is_named_with_its_index(custody, partner_client):
    response = post(partner_client(custody.partner), {"events": [event(), event(status="teleported")]})

    assert response.status_code == 400
    assert "events[1].status" in response.json()["fields"]
    assert TrackingEvent.objects.count() == 0


def test_invalid_json_gets_400(custody, partner_client):
    response = post(partner_client(custody.partner), b"{not json")

    assert response.status_code == 400
    assert "body" in response.json()["fields"]


def test_protected_fields_cannot_be_set_by_a_partner(custody, partner_client):
    response = post(partner_client(custody.partner), event(applied=False, shipment=1, flags=["x"]))

    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"applied", "shipment", "flags"}


def test_body_over_the_size_limit_gets_413_and_is_kept_marked(custody, partner_client, settings):
    settings.BATON = {**settings.BATON, "MAX_BODY_BYTES": 1000}
    big = {"events": [event(event_id=str(i), note="x" * 200) for i in range(20)]}

    response = post(partner_client(custody.partner), big)

    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert TrackingEvent.objects.count() == 0
    message = InboundMessage.objects.get()
    assert message.state == InboundMessage.State.REJECTED
    assert "limit" in message.error


def test_batch_over_the_cap_is_refused(custody, partner_client, settings):
    settings.BATON = {**settings.BATON, "MAX_BATCH_EVENTS": 3}

    response = post(partner_client(custody.partner), {"events": [event(event_id=str(i)) for i in range(4)]})

    assert response.status_code == 400
    assert "events" in response.json()["fields"]


def test_event_for_a_shipment_the_partner_does_not_hold_gets_404(custody, partner_client):
    from tests.factories import CustodyFactory

    other = CustodyFactory(partner_reference="OTHER-1")  # held by someone else

    response = post(partner_client(custody.partner), event(reference=other.partner_reference))

    assert response.status_code == 404
    assert response.json()["references"] == ["OTHER-1"]
    assert TrackingEvent.objects.count() == 0
    assert InboundMessage.objects.get().state == InboundMessage.State.REJECTED


def test_partner_may_report_under_the_merchant_reference(custody, partner_client):
    response = post(partner_client(custody.partner), event(reference=custody.shipment.reference))

    assert response.status_code == 202
    custody.shipment.refresh_from_db()
    assert custody.shipment.status == "out_for_delivery"
