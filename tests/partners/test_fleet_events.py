"""Route and vehicle events reach only the jobs held then; one step is one entry whichever channel said it."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from partners import services
from partners.adapters.base import NormalizedEvent
from partners.models import Custody, InboundMessage
from tests.factories import ShipmentFactory
from tests.partners.samples import body_of, create_partner, hold_jobs, post_webhook, sign
from tracking.models import Shipment, TrackingEvent

pytestmark = pytest.mark.django_db(transaction=True)


def geofence_exit(when, *, route: str = "", vehicle: str = "", event_id: str = "") -> bytes:
    data: dict = {"address": {"id": "77120045", "name": "Depot"}, "vehicle": {"id": vehicle}}
    if route:
        data["route"] = {"id": route}
    payload = {
        "eventId": event_id or f"gx-{route}-{vehicle}-{when:%s}",
        "eventType": "GeofenceExit",
        "data": data,
    }
    if when is not None:
        payload["eventTime"] = when.isoformat()
    return json.dumps(payload).encode()


def deliver(partner, reference: str, when) -> None:
    body = json.dumps(
        {"reference": reference, "status": "delivered", "occurred_at": when.isoformat()}
    ).encode()
    message = services.record_inbound(partner, channel=InboundMessage.Channel.API, body=body, headers={})
    services.process_inbound(message.pk)


def assign(partner, reference: str, job: str, *, started_at, route: str = "", vehicle: str = "") -> Shipment:
    shipment = ShipmentFactory(reference=reference)
    services.assign_shipment(
        shipment,
        partner=partner,
        partner_reference=job,
        group_reference=route,
        vehicle_reference=vehicle,
        started_at=started_at,
    )
    return shipment


def statuses(*shipments: Shipment) -> list[str]:
    return [Shipment.objects.get(pk=s.pk).status for s in shipments]


def test_a_vans_next_day_route_event_skips_yesterdays_delivered_parcel(client):
    samsara = create_partner("samsara")
    yesterday = timezone.now() - timedelta(days=1)
    done = assign(samsara, "ORD-DONE", "STOP-1", started_at=yesterday, route="R-9")
    deliver(samsara, "STOP-1", yesterday + timedelta(hours=3))
    today = assign(
        samsara, "ORD-TODAY", "STOP-2", started_at=timezone.now() - timedelta(hours=1), route="R-9"
    )

    body = geofence_exit(timezone.now(), route="R-9")
    assert post_webhook(client, samsara, body, sign("samsara", body)).status_code == 200

    assert Custody.objects.get(partner_reference="STOP-1").ended_at == yesterday + timedelta(hours=3)
    assert statuses(done, today) == ["delivered", "out_for_delivery"]
    assert TrackingEvent.objects.filter(shipment=done).count() == 1
    assert Shipment.objects.get(pk=done.pk).flags == []


def test_a_late_route_event_dated_before_the_delivery_still_reaches_that_job(client):
    samsara = create_partner("samsara")
    start = timezone.now() - timedelta(hours=5)
    done = assign(samsara, "ORD-DONE", "STOP-1", started_at=start, route="R-9")
    deliver(samsara, "STOP-1", start + timedelta(hours=3))

    body = geofence_exit(start + timedelta(hours=1), route="R-9")
    assert post_webhook(client, samsara, body, sign("samsara", body)).status_code == 200

    events = TrackingEvent.objects.filter(shipment=done).order_by("sequence")
    assert [(e.status, e.applied, e.flags) for e in events] == [
        ("out_for_delivery", True, []),
        ("delivered", True, []),
    ]


def test_a_vehicle_only_telematics_event_reaches_that_vehicles_open_stops(client):
    samsara = create_partner("samsara")
    start = timezone.now() - timedelta(hours=2)
    on_van = assign(samsara, "ORD-ON-VAN", "STOP-1", started_at=start, vehicle="281474982109331")
    delivered = assign(samsara, "ORD-DONE", "STOP-2", started_at=start, vehicle="281474982109331")
    deliver(samsara, "STOP-2", start + timedelta(minutes=30))
    other_van = assign(samsara, "ORD-OTHER", "STOP-3", started_at=start, vehicle="281474982109999")

    body = geofence_exit(timezone.now(), vehicle="281474982109331")
    response = post_webhook(client, samsara, body, sign("samsara", body))

    assert response.status_code == 200
    assert InboundMessage.objects.get(pk=response.json()["message_id"]).state == "processed"
    assert statuses(on_van, delivered, other_van) == ["out_for_delivery", "delivered", "pending"]


def test_an_assignment_carries_its_route_and_vehicle(agent_client):
    create_partner("samsara")
    ShipmentFactory(reference="ORD-1")

    response = agent_client.post(
        "/api/v1/shipments/ORD-1/assignments",
        {
            "partner": "samsara",
            "partner_reference": "STOP-1",
            "group_reference": "R-9",
            "vehicle_reference": "V-7",
        },
        format="json",
    )

    assert response.status_code == 201
    assert (response.json()["group_reference"], response.json()["vehicle_reference"]) == ("R-9", "V-7")
    assert Custody.objects.filter(group_reference="R-9", vehicle_reference="V-7").count() == 1


def test_a_geofence_exit_with_no_time_in_the_body_takes_the_signed_send_time(client):
    samsara = create_partner("samsara")
    start = timezone.now() - timedelta(hours=1)
    assign(samsara, "ORD-ON-VAN", "STOP-1", started_at=start, vehicle="V-7")
    body = geofence_exit(None, vehicle="V-7", event_id="gx-1")
    headers = sign("samsara", body)

    assert post_webhook(client, samsara, body, headers).status_code == 200

    event = TrackingEvent.objects.get()
    assert event.timed is True
    assert int(event.occurred_at.timestamp()) == int(headers["X-Samsara-Timestamp"])


def test_stuart_reporting_one_delivery_as_a_job_and_a_delivery_update_is_one_entry(client):
    stuart = create_partner("stuart")
    (shipment,) = hold_jobs(stuart, "stuart")
    job = body_of("stuart", "extra/job_update_finished.json")
    delivery = body_of("stuart", "extra/delivery_update_delivered.json")

    answers = [post_webhook(client, stuart, body, sign("stuart", body)).json() for body in (job, delivery)]

    delivered = TrackingEvent.objects.filter(shipment=shipment, status="delivered")
    assert delivered.count() == 1
    # Both messages stay as evidence of the one step.
    entry = delivered.get()
    assert {entry.message_id, *entry.details["also_reported_in"]} == {a["message_id"] for a in answers}


def test_the_same_step_without_time_or_id_through_two_messages_is_one_entry(custody):
    # Two webhook types for one step, neither with an event id or a time: fingerprinting the bodies
    # would make two entries.
    for topic in (b"job", b"delivery"):
        message = services.record_inbound(
            custody.partner, channel=InboundMessage.Channel.WEBHOOK, body=topic, headers={}, enqueue=False
        )
        event = NormalizedEvent(
            reference=custody.partner_reference, status="out_for_delivery", raw_status=topic.decode()
        )
        assert services.record_events(custody.partner, [event], message=message) == []

    entry = TrackingEvent.objects.get()
    assert (entry.status, entry.timed) == ("out_for_delivery", False)
    assert len(entry.details["also_reported_in"]) == 1


def test_one_step_sent_under_two_event_ids_at_the_same_vendor_time_is_one_entry(custody):
    # Two webhook types, each with its own id, for the same step at the same vendor time.
    when = timezone.now() - timedelta(minutes=20)
    for event_id in ("evt-delivery-status", "evt-job-update"):
        message = services.record_inbound(
            custody.partner,
            channel=InboundMessage.Channel.WEBHOOK,
            body=event_id.encode(),
            headers={},
            enqueue=False,
        )
        event = NormalizedEvent(
            reference=custody.partner_reference, status="picked_up", occurred_at=when, event_id=event_id
        )
        assert services.record_events(custody.partner, [event], message=message) == []

    entry = TrackingEvent.objects.get()
    assert (entry.event_id, len(entry.details["also_reported_in"])) == ("evt-delivery-status", 1)


def test_two_attempts_at_different_vendor_times_stay_two_steps(custody, partner_client):
    client = partner_client(custody.partner)
    for hours in (3, 1):
        when = (timezone.now() - timedelta(hours=hours)).isoformat()
        body = {"reference": custody.partner_reference, "status": "attempt_failed", "occurred_at": when}
        assert client.post("/api/partner/v1/events", body, format="json").status_code == 202

    assert TrackingEvent.objects.filter(status="attempt_failed").count() == 2


def test_a_failed_attempt_hides_the_stale_eta_from_the_customer(custody, partner_client, client):
    courier = partner_client(custody.partner)
    now = timezone.now()
    ofd = {
        "reference": custody.partner_reference,
        "status": "out_for_delivery",
        "occurred_at": (now - timedelta(hours=2)).isoformat(),
        "eta": (now - timedelta(minutes=30)).isoformat(),
    }
    failed = {
        "reference": custody.partner_reference,
        "status": "attempt_failed",
        "reason": "recipient_not_home",
        "occurred_at": (now - timedelta(minutes=25)).isoformat(),
    }
    for body in (ofd, failed):
        assert courier.post("/api/partner/v1/events", body, format="json").status_code == 202

    public = client.get(f"/api/public/v1/track/{custody.shipment.token}").json()

    assert public["status"] == "attempt_failed"
    assert public["eta"] is None
