"""The reconciliation rules told as the stories they exist for, through the real HTTP doors and services."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from partners import services
from partners.models import InboundMessage, Partner
from partners.services.sweep import run_sweep
from tests.factories import PartnerFactory, ShipmentFactory
from tracking.models import Shipment, TrackingEvent

pytestmark = pytest.mark.django_db(transaction=True)

# Half a day ago, after the custody fixture began (a day ago): the stories never depend on the date.
MORNING = (datetime.now(UTC) - timedelta(hours=12)).replace(second=0, microsecond=0)
STUART_TOKEN = "stuart-webhook-token-0042"
# The shipment factory's destination (10 Downing Street) and a point 3 km due north of it.
DOOR = (51.5034, -0.1276)
THREE_KM_NORTH = (51.5034 + 3000 / 111_195, -0.1276)


def minutes(n: float) -> datetime:
    return MORNING + timedelta(minutes=n)


def when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def assign(agent_client, reference: str, partner: Partner, partner_reference: str) -> None:
    response = agent_client.post(
        f"/api/v1/shipments/{reference}/assignments",
        {"partner": partner.slug, "partner_reference": partner_reference},
        format="json",
    )
    assert response.status_code == 201, response.content


def report(client, reference: str, status: str, occurred_at: datetime, **extra) -> None:
    body = {"reference": reference, "status": status, "occurred_at": occurred_at.isoformat(), **extra}
    response = client.post("/api/partner/v1/events", body, format="json")
    assert response.status_code == 202, response.content


def hand_off(client, reference: str, to_partner: Partner, to_reference: str) -> None:
    body = {"reference": reference, "to_partner": to_partner.slug, "to_reference": to_reference}
    response = client.post("/api/partner/v1/handoffs", body, format="json")
    assert response.status_code == 201, response.content
    services.confirm_handoff(to_partner, reference=to_reference)  # the receiver takes the reference


def detail(agent_client, reference: str) -> dict:
    return agent_client.get(f"/api/v1/shipments/{reference}").json()


def timeline(agent_client, reference: str) -> dict:
    return agent_client.get(f"/api/v1/shipments/{reference}/timeline").json()


def entries_by_status(agent_client, reference: str) -> dict[str, dict]:
    return {e["status"]: e for e in timeline(agent_client, reference)["entries"] if e["status"]}


# --- A contractor who goes silent after a hand-off ---------------------------------------------------


def test_a_contractor_who_goes_silent_after_a_handoff_becomes_a_stale_custodian(
    agent_client, partner_client, client, django_user_model
):
    fleet = PartnerFactory(slug="own-fleet", name="Own Fleet", kind=Partner.Kind.FLEET)
    contractor = PartnerFactory(slug="quick-gig", name="Quick Gig")
    ShipmentFactory(reference="ORD-SILENT")
    fleet_api, contractor_api = partner_client(fleet), partner_client(contractor)

    with time_machine.travel(MORNING, tick=False) as clock:
        assign(agent_client, "ORD-SILENT", fleet, "VAN-7")
        clock.move_to(minutes(10))
        report(fleet_api, "VAN-7", "picked_up", minutes(10))
        clock.move_to(minutes(60))
        hand_off(fleet_api, "VAN-7", contractor, "QG-1")
        clock.move_to(minutes(65))
        report(contractor_api, "QG-1", "in_transit", minutes(65))

        # Beat runs the sweep every minute; just inside the silence threshold (two hours) nothing is wrong.
        clock.move_to(minutes(65 + 119))
        run_sweep()
        assert "stale_custodian" not in detail(agent_client, "ORD-SILENT")["flags"]

        clock.move_to(minutes(65 + 121))
        run_sweep()
        seen = detail(agent_client, "ORD-SILENT")
        story = timeline(agent_client, "ORD-SILENT")
        client.force_login(django_user_model.objects.get(username="agent"))
        console = client.get("/console/shipments/ORD-SILENT/")

    assert seen["status"] == "in_transit"
    assert seen["current_partner"] == "quick-gig"
    assert "stale_custodian" in seen["flags"]
    assert "stale_custodian" in story["flags"]
    assert "Holder silent" in console.content.decode()  # the console shows flags in words
    chain = [
        (link["partner"], link["partner_reference"], when(link["last_heard_at"]), link["is_current"])
        for link in seen["custody_chain"]
    ]
    assert chain == [
        ("own-fleet", "VAN-7", minutes(60), False),  # its last word was the hand-off itself
        ("quick-gig", "QG-1", minutes(65), True),
    ]
    # Reconciliation wrote nothing while the contractor kept quiet: the sweep's alert is the flag.
    stored = Shipment.objects.get(reference="ORD-SILENT")
    assert "stale_custodian" not in stored.flags
    assert stored.alerts == ["stale_custodian"]


def test_the_fleet_cannot_acknowledge_for_a_silent_contractor_and_the_flag_clears_when_the_contractor_speaks(
    agent_client, partner_client
):
    fleet = PartnerFactory(slug="own-fleet", kind=Partner.Kind.FLEET)
    contractor = PartnerFactory(slug="quick-gig")
    ShipmentFactory(reference="ORD-SILENT")
    fleet_api, contractor_api = partner_client(fleet), partner_client(contractor)

    with time_machine.travel(MORNING, tick=False) as clock:
        assign(agent_client, "ORD-SILENT", fleet, "VAN-7")
        clock.move_to(minutes(60))
        hand_off(fleet_api, "VAN-7", contractor, "QG-1")
        clock.move_to(minutes(60 + 180))
        run_sweep()
        # Never heard from since it took the job: unacknowledged, counting from the hand-off.
        assert "unacknowledged" in detail(agent_client, "ORD-SILENT")["flags"]

        report(fleet_api, "VAN-7", "delivered", minutes(60 + 180))
        after_fleet = detail(agent_client, "ORD-SILENT")
        fleet_entry = entries_by_status(agent_client, "ORD-SILENT")["delivered"]

        clock.move_to(minutes(60 + 185))
        report(contractor_api, "QG-1", "out_for_delivery", minutes(60 + 185))
        after_contractor = detail(agent_client, "ORD-SILENT")

    assert after_fleet["status"] == "pending"
    assert "unacknowledged" in after_fleet["flags"]  # the former holder cannot acknowledge for it
    assert fleet_entry["applied"] is False
    assert fleet_entry["flags"] == ["former_custodian"]
    assert after_contractor["status"] == "out_for_delivery"
    assert "unacknowledged" not in after_contractor["flags"]  # cleared by the report, before any sweep


def test_silence_after_delivery_is_not_a_stale_custodian(agent_client, partner_client, custody):
    with time_machine.travel(MORNING, tick=False) as clock:
        report(partner_client(custody.partner), "SWIFT-77", "delivered", MORNING)
        clock.move_to(MORNING + timedelta(days=3))
        run_sweep()
        seen = detail(agent_client, custody.shipment.reference)

    assert seen["status"] == "delivered"
    assert "stale_custodian" not in seen["flags"]


# --- A courier that reports delivered 3 km from the address --------------------------------------


@pytest.mark.parametrize(
    ("where", "flagged"),
    [(THREE_KM_NORTH, True), ((DOOR[0] + 0.0005, DOOR[1]), False)],
    ids=["3km-away", "at-the-door"],
)
def test_a_delivery_reported_3km_from_the_address_is_believed_but_flagged(
    agent_client, partner_client, custody, where, flagged
):
    location = {"lat": where[0], "lng": where[1]}
    report(partner_client(custody.partner), "SWIFT-77", "delivered", MORNING, location=location)

    seen = detail(agent_client, custody.shipment.reference)
    entry = entries_by_status(agent_client, custody.shipment.reference)["delivered"]

    assert seen["status"] == "delivered"
    assert entry["applied"] is True
    assert entry["location"] == location
    assert ("far_from_destination" in entry["flags"]) is flagged
    assert ("far_from_destination" in seen["flags"]) is flagged


# --- A stale `arriving` that comes after `delivered` ---------------------------------------------


def test_a_stale_arriving_after_delivered_is_kept_flagged_and_does_not_undo_the_delivery(
    agent_client, partner_client, custody, client
):
    courier = partner_client(custody.partner)
    report(courier, "SWIFT-77", "out_for_delivery", minutes(300), event_id="e1")
    report(courier, "SWIFT-77", "delivered", minutes(365), event_id="e2")
    # The courier app's queued geofence ping, sent once the phone found a signal again.
    report(courier, "SWIFT-77", "arriving", minutes(367), event_id="e3")

    seen = detail(agent_client, custody.shipment.reference)
    story = timeline(agent_client, custody.shipment.reference)
    public = client.get(f"/api/public/v1/track/{custody.shipment.token}").json()

    assert seen["status"] == "delivered"
    assert "regression" in seen["flags"]
    assert [(e["status"], e["applied"], e["flags"]) for e in story["entries"]] == [
        ("out_for_delivery", True, []),
        ("delivered", True, []),
        ("arriving", False, ["regression"]),
    ]
    assert public["status"] == "delivered"
    assert [step["status"] for step in public["steps"]] == ["out_for_delivery", "delivered"]


# --- A webhook that arrives before its assignment --------------------------------------------------


def stuart_delivery(job_id: int, status: str, client_reference: str, picked_at: datetime) -> bytes:
    """A Stuart `delivery` webhook as the vendor sends it (trimmed to what Baton reads)."""
    payload = {
        "event": "delivery",
        "type": "update",
        "data": {
            "id": job_id * 10,
            "status": status,
            "clientReference": client_reference,
            "pickedAt": picked_at.isoformat(),
            "deliveredAt": None,
            "job": {"id": job_id, "status": "in_progress", "jobReference": client_reference},
        },
    }
    return json.dumps(payload).encode()


def stuart_partner() -> Partner:
    return PartnerFactory(slug="stuart-london", adapter="stuart", webhook_secret=f"Bearer {STUART_TOKEN}")


def post_stuart(client, partner: Partner, body: bytes):
    return client.post(
        f"/webhooks/stuart/{partner.slug}/",
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {STUART_TOKEN}",
    )


def test_a_webhook_that_arrives_before_its_assignment_is_kept_and_applied_once_the_assignment_is_made(
    agent_client, client
):
    stuart = stuart_partner()
    shipment = ShipmentFactory(reference="ORD-EARLY")
    body = stuart_delivery(5001, "delivering", "ORD-EARLY", minutes(30))

    response = post_stuart(client, stuart, body)

    assert response.status_code == 200
    message = InboundMessage.objects.get(pk=response.json()["message_id"])
    assert message.state == InboundMessage.State.UNMATCHED
    assert message.error.startswith("no shipment held by stuart-london under: 5001")
    assert bytes(message.body) == body
    assert not TrackingEvent.objects.filter(shipment=shipment).exists()

    assign(agent_client, "ORD-EARLY", stuart, "5001")

    message.refresh_from_db()
    assert (message.state, message.error, message.events_recorded) == ("processed", "", 1)
    [entry] = timeline(agent_client, "ORD-EARLY")["entries"]
    assert (entry["status"], entry["source"]["channel"], entry["source"]["message_id"]) == (
        "out_for_delivery",
        "webhook",
        message.pk,
    )
    assert detail(agent_client, "ORD-EARLY")["status"] == "out_for_delivery"

    # Assigning again, or another partner's assignment, does not apply it a second time.
    assign(agent_client, "ORD-EARLY", stuart, "5001")
    assign(agent_client, "ORD-EARLY", PartnerFactory(slug="other-gig"), "OG-1")
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 1


def test_a_message_nobody_can_read_is_kept_with_its_reason(client):
    stuart = stuart_partner()

    response = post_stuart(client, stuart, b'{"event": "delivery", "data": "not an object"}')

    assert response.status_code == 200
    message = InboundMessage.objects.get(pk=response.json()["message_id"])
    assert message.state == InboundMessage.State.FAILED
    assert message.error == "cannot parse: Stuart webhook without a data object"


# --- Clock skew -------------------------------------------------------------------------------------


def test_a_phone_three_hours_fast_is_clamped_to_when_we_heard_it_and_flagged(
    agent_client, partner_client, custody
):
    courier = partner_client(custody.partner)
    with time_machine.travel(minutes(120), tick=False) as clock:
        report(courier, "SWIFT-77", "picked_up", minutes(120 + 180), event_id="fast-phone")
        clock.move_to(minutes(140))
        report(courier, "SWIFT-77", "in_transit", minutes(140), event_id="depot-scanner")

    seen = detail(agent_client, custody.shipment.reference)
    story = timeline(agent_client, custody.shipment.reference)

    # Taken at its word, the pick-up would come after the depot scan and the status would go back.
    assert seen["status"] == "in_transit"
    assert "clock_skew" in seen["flags"]
    picked_up, in_transit = story["entries"]
    assert (picked_up["status"], picked_up["sequence"], picked_up["flags"]) == (
        "picked_up",
        1,
        ["clock_skew"],
    )
    assert when(picked_up["effective_at"]) == when(picked_up["received_at"]) == minutes(120)
    assert when(picked_up["occurred_at"]) == minutes(300)
    assert (in_transit["status"], in_transit["sequence"], in_transit["flags"]) == ("in_transit", 2, [])


# --- Duplicates delivered days later -------------------------------------------------------------------


def stuart_job_update(job_id: int, client_reference: str) -> bytes:
    # A job update whose delivery carries no time of its own: only the bytes identify the fact.
    data = {
        "id": job_id,
        "status": "in_progress",
        "jobReference": client_reference,
        "deliveries": [{"id": job_id * 10, "status": "picking", "clientReference": client_reference}],
    }
    return json.dumps({"event": "job", "type": "update", "data": data}).encode()


@pytest.mark.parametrize("kind", ["timed-delivery-update", "untimed-job-update"])
def test_a_byte_identical_redelivery_three_days_later_is_one_entry(agent_client, client, kind):
    stuart = stuart_partner()
    shipment = ShipmentFactory(reference="ORD-AGAIN")
    assign(agent_client, "ORD-AGAIN", stuart, "5002")
    body = (
        stuart_delivery(5002, "delivering", "ORD-AGAIN", minutes(30))
        if kind == "timed-delivery-update"
        else stuart_job_update(5002, "ORD-AGAIN")
    )

    with time_machine.travel(minutes(31), tick=False) as clock:
        first = post_stuart(client, stuart, body)
        clock.move_to(minutes(31) + timedelta(days=3))
        again = post_stuart(client, stuart, body)

    assert (first.status_code, again.status_code) == (200, 200)
    states = InboundMessage.objects.filter(partner=stuart).values_list("state", flat=True)
    assert list(states) == ["processed", "processed"]
    [entry] = timeline(agent_client, "ORD-AGAIN")["entries"]
    assert entry["source"]["message_id"] == first.json()["message_id"]
    assert when(entry["received_at"]) == minutes(31)
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 1


def test_the_same_native_event_without_an_id_sent_days_apart_is_one_entry(
    agent_client, partner_client, custody
):
    courier = partner_client(custody.partner)
    with time_machine.travel(minutes(10), tick=False) as clock:
        report(courier, "SWIFT-77", "picked_up", minutes(5))
        clock.move_to(minutes(10) + timedelta(days=2))
        report(courier, "SWIFT-77", "picked_up", minutes(5))

    story = timeline(agent_client, custody.shipment.reference)

    assert [(e["status"], when(e["received_at"])) for e in story["entries"]] == [("picked_up", minutes(10))]
    assert InboundMessage.objects.filter(state="processed").count() == 2
