"""Subcontracting through `POST /api/partner/v1/handoffs`: the custody chain as agents see it."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from partners import services
from partners.models import Custody, InboundMessage, Partner
from tests.factories import PartnerFactory, ShipmentFactory
from tracking.models import TrackingEvent

pytestmark = pytest.mark.django_db(transaction=True)

MORNING = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
HANDOFFS_URL = "/api/partner/v1/handoffs"


def minutes(n: float) -> datetime:
    return MORNING + timedelta(minutes=n)


def when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def report(client, reference: str, status: str, occurred_at: datetime) -> None:
    body = {"reference": reference, "status": status, "occurred_at": occurred_at.isoformat()}
    response = client.post("/api/partner/v1/events", body, format="json")
    assert response.status_code == 202, response.content


def hand_off(client, reference: str, to_partner: str, to_reference: str, *, confirm: bool = True, **extra):
    """Hand the job on; the receiver confirms the proposed reference, as a real receiver would."""
    body = {"reference": reference, "to_partner": to_partner, "to_reference": to_reference, **extra}
    response = client.post(HANDOFFS_URL, body, format="json")
    if confirm and response.status_code == 201:
        services.confirm_handoff(Partner.objects.get(slug=to_partner), reference=to_reference)
    return response


@pytest.fixture
def chain_partners(db) -> dict[str, Partner]:
    return {
        "fleet": PartnerFactory(slug="own-fleet", name="Own Fleet", kind=Partner.Kind.FLEET),
        "3pl": PartnerFactory(slug="hub-3pl", name="Hub Logistics"),
        "gig": PartnerFactory(slug="zoom-gig", name="Zoom Gig"),
        "bike": PartnerFactory(slug="bike-co", name="Bike Co"),
    }


@pytest.fixture
def with_the_fleet(agent_client, chain_partners):
    ShipmentFactory(reference="ORD-CHAIN")
    with time_machine.travel(MORNING, tick=False):
        response = agent_client.post(
            "/api/v1/shipments/ORD-CHAIN/assignments",
            {"partner": "own-fleet", "partner_reference": "VAN-1"},
            format="json",
        )
    assert response.status_code == 201


def test_a_job_handed_from_fleet_to_3pl_to_gig_courier_to_another_courier_shows_the_whole_chain(
    agent_client, partner_client, chain_partners, with_the_fleet
):
    api = {name: partner_client(partner) for name, partner in chain_partners.items()}

    with time_machine.travel(minutes(10), tick=False) as clock:
        report(api["fleet"], "VAN-1", "picked_up", minutes(10))
        clock.move_to(minutes(60))
        to_3pl = hand_off(api["fleet"], "VAN-1", "hub-3pl", "3PL-9", note="Overflow to the 3PL")
        clock.move_to(minutes(90))
        report(api["3pl"], "3PL-9", "in_transit", minutes(90))
        clock.move_to(minutes(120))
        to_gig = hand_off(api["3pl"], "3PL-9", "zoom-gig", "ZG-5")
        clock.move_to(minutes(130))
        report(api["gig"], "ZG-5", "out_for_delivery", minutes(130))
        clock.move_to(minutes(150))
        to_bike = hand_off(api["gig"], "ZG-5", "bike-co", "BK-2", note="Van broke down")
        clock.move_to(minutes(170))
        report(api["bike"], "BK-2", "arriving", minutes(170))
        clock.move_to(minutes(175))
        report(api["bike"], "BK-2", "delivered", minutes(175))

    assert [r.status_code for r in (to_3pl, to_gig, to_bike)] == [201, 201, 201]
    fleet_link = Custody.objects.get(partner__slug="own-fleet").pk
    assert to_3pl.json()["handed_off_by"] == fleet_link
    assert (to_3pl.json()["partner"], to_3pl.json()["partner_reference"]) == ("hub-3pl", "3PL-9")

    shipment = agent_client.get("/api/v1/shipments/ORD-CHAIN").json()
    assert (shipment["status"], shipment["current_partner"], shipment["current_partner_reference"]) == (
        "delivered",
        "bike-co",
        "BK-2",
    )
    chain = shipment["custody_chain"]
    assert [
        (
            link["partner"],
            link["partner_reference"],
            when(link["started_at"]),
            when(link["ended_at"]),
            when(link["last_heard_at"]),
            link["is_current"],
        )
        for link in chain
    ] == [
        ("own-fleet", "VAN-1", minutes(0), minutes(60), minutes(60), False),
        ("hub-3pl", "3PL-9", minutes(60), minutes(120), minutes(120), False),
        ("zoom-gig", "ZG-5", minutes(120), minutes(150), minutes(150), False),
        # The job ended with the delivery, and so did the last custody.
        ("bike-co", "BK-2", minutes(150), minutes(175), minutes(175), False),
    ]
    # Each link names the one that handed the job on to it.
    assert [link["handed_off_by"] for link in chain] == [None, *(link["id"] for link in chain[:-1])]

    timeline = agent_client.get("/api/v1/shipments/ORD-CHAIN/timeline").json()
    story = [
        (e["sequence"], e["kind"], e["status"], e["source"]["partner"], e["applied"], e["flags"])
        for e in timeline["entries"]
    ]
    assert story == [
        (1, "status", "picked_up", "own-fleet", True, []),
        (2, "handoff", "", "own-fleet", True, []),
        (3, "status", "in_transit", "hub-3pl", True, []),
        (4, "handoff", "", "hub-3pl", True, []),
        (5, "status", "out_for_delivery", "zoom-gig", True, []),
        (6, "handoff", "", "zoom-gig", True, []),
        (7, "status", "arriving", "bike-co", True, []),
        (8, "status", "delivered", "bike-co", True, []),
    ]
    handoffs = [e for e in timeline["entries"] if e["kind"] == "handoff"]
    assert [(e["details"]["to_partner"], e["details"]["to_reference"]) for e in handoffs] == [
        ("hub-3pl", "3PL-9"),
        ("zoom-gig", "ZG-5"),
        ("bike-co", "BK-2"),
    ]
    assert [e["note"] for e in handoffs] == ["Overflow to the 3PL", "", "Van broke down"]
    assert all(e["source"]["channel"] == "handoff" for e in handoffs)
    statuses = [e for e in timeline["entries"] if e["kind"] == "status"]
    assert [e["custodian"]["partner"] for e in statuses] == [
        "own-fleet",
        "hub-3pl",
        "zoom-gig",
        "bike-co",
        "bike-co",
    ]
    assert timeline["flags"] == []


def test_a_former_holder_reporting_after_its_handoff_is_kept_but_not_believed(
    agent_client, partner_client, chain_partners, with_the_fleet
):
    fleet, gig = partner_client(chain_partners["fleet"]), partner_client(chain_partners["gig"])
    with time_machine.travel(minutes(60), tick=False) as clock:
        assert hand_off(fleet, "VAN-1", "zoom-gig", "ZG-1").status_code == 201
        clock.move_to(minutes(70))
        report(gig, "ZG-1", "out_for_delivery", minutes(70))
        clock.move_to(minutes(80))
        report(fleet, "VAN-1", "attempt_failed", minutes(80))

    timeline = agent_client.get("/api/v1/shipments/ORD-CHAIN/timeline").json()

    assert timeline["status"] == "out_for_delivery"
    late = timeline["entries"][-1]
    assert (late["status"], late["source"]["partner"], late["applied"], late["flags"]) == (
        "attempt_failed",
        "own-fleet",
        False,
        ["former_custodian"],
    )


def assert_nothing_changed() -> None:
    assert Custody.objects.count() == 1
    assert not TrackingEvent.objects.filter(kind="handoff").exists()
    assert Custody.objects.get().ended_at is None


def test_a_handoff_by_a_partner_that_does_not_hold_the_job_is_a_404(
    partner_client, chain_partners, with_the_fleet
):
    response = hand_off(partner_client(chain_partners["gig"]), "VAN-1", "bike-co", "BK-1")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert_nothing_changed()
    # The request passed authentication, so what it said is kept, with why it was refused.
    message = InboundMessage.objects.get(partner=chain_partners["gig"])
    assert (message.channel, message.state) == ("handoff", "rejected")
    assert "VAN-1" in message.error


def test_a_former_holder_cannot_hand_the_job_on_again(partner_client, chain_partners, with_the_fleet):
    fleet = partner_client(chain_partners["fleet"])
    assert hand_off(fleet, "VAN-1", "hub-3pl", "3PL-1").status_code == 201

    response = hand_off(fleet, "VAN-1", "zoom-gig", "ZG-1")

    assert response.status_code == 404
    assert list(Custody.objects.open().values_list("partner__slug", flat=True)) == ["hub-3pl"]
    assert Custody.objects.count() == 2
    assert TrackingEvent.objects.filter(kind="handoff").count() == 1


def test_a_handoff_to_an_unknown_partner_is_a_400_naming_the_field(
    partner_client, chain_partners, with_the_fleet
):
    response = hand_off(partner_client(chain_partners["fleet"]), "VAN-1", "nobody-we-know", "X-1")

    assert response.status_code == 400
    assert "to_partner" in response.json()["fields"]
    assert_nothing_changed()


def test_a_handoff_to_an_inactive_partner_is_a_400(partner_client, chain_partners, with_the_fleet):
    PartnerFactory(slug="gone-gig", is_active=False)

    response = hand_off(partner_client(chain_partners["fleet"]), "VAN-1", "gone-gig", "GG-1")

    assert response.status_code == 400
    assert_nothing_changed()


def test_a_handoff_to_oneself_is_a_400(partner_client, chain_partners, with_the_fleet):
    response = hand_off(partner_client(chain_partners["fleet"]), "VAN-1", "own-fleet", "VAN-2")

    assert response.status_code == 400
    assert "itself" in str(response.json())
    assert list(response.json()["fields"]) == ["to_partner"]
    assert_nothing_changed()


def test_the_first_holders_handoff_dated_before_its_custody_is_kept_and_flagged_like_its_events(
    agent_client, partner_client, chain_partners, with_the_fleet
):
    fleet = partner_client(chain_partners["fleet"])
    report(fleet, "VAN-1", "picked_up", MORNING - timedelta(hours=2))

    response = hand_off(
        fleet, "VAN-1", "zoom-gig", "ZG-1", occurred_at=(MORNING - timedelta(hours=1)).isoformat()
    )

    assert response.status_code == 201
    # The chain stays in order: the receiver's custody starts where the fleet's began.
    assert when(response.json()["started_at"]) == MORNING
    entries = agent_client.get("/api/v1/shipments/ORD-CHAIN/timeline").json()["entries"]
    assert [(e["kind"], e["applied"], e["flags"]) for e in entries] == [
        ("status", True, ["before_custody"]),
        ("handoff", True, ["before_custody"]),
    ]


def test_a_later_holders_handoff_dated_before_its_custody_is_a_400_naming_occurred_at(
    partner_client, chain_partners, with_the_fleet
):
    fleet = partner_client(chain_partners["fleet"])
    with time_machine.travel(minutes(60), tick=False):
        assert hand_off(fleet, "VAN-1", "hub-3pl", "3PL-9").status_code == 201

    response = hand_off(
        partner_client(chain_partners["3pl"]),
        "3PL-9",
        "zoom-gig",
        "ZG-1",
        occurred_at=minutes(30).isoformat(),
    )

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["occurred_at"]
    assert list(Custody.objects.open().values_list("partner__slug", flat=True)) == ["hub-3pl"]


def test_a_handoff_under_a_reference_the_receiver_already_uses_is_only_a_proposal(
    partner_client, chain_partners, with_the_fleet
):
    other = ShipmentFactory(reference="ORD-OTHER")
    Custody.objects.create(
        partner=chain_partners["gig"], shipment=other, partner_reference="ZG-1", started_at=MORNING
    )

    response = hand_off(partner_client(chain_partners["fleet"]), "VAN-1", "zoom-gig", "ZG-1", confirm=False)

    # Nothing about the receiver's other job leaks, and its reports under ZG-1 still reach that job.
    assert response.status_code == 201
    assert response.json()["reference_confirmed"] is False
    report(partner_client(chain_partners["gig"]), "ZG-1", "picked_up", MORNING + timedelta(minutes=5))
    assert TrackingEvent.objects.get(status="picked_up").shipment.reference == "ORD-OTHER"


def test_a_handoff_dated_far_in_the_future_takes_effect_now_and_the_new_holder_is_heard(
    partner_client, chain_partners, with_the_fleet
):
    now = minutes(60)
    with time_machine.travel(now, tick=False):
        response = hand_off(
            partner_client(chain_partners["fleet"]),
            "VAN-1",
            "zoom-gig",
            "ZG-1",
            occurred_at="2099-01-01T00:00:00+00:00",
        )
        report(partner_client(chain_partners["gig"]), "ORD-CHAIN", "in_transit", now)

    assert response.status_code == 201
    assert when(response.json()["started_at"]) == now
    handoff = TrackingEvent.objects.get(kind="handoff")
    assert "clock_skew" in handoff.flags
    reported = TrackingEvent.objects.get(status="in_transit")
    assert reported.applied
    assert reported.flags == []


def test_an_assignment_dated_far_in_the_future_starts_now(agent_client, chain_partners):
    ShipmentFactory(reference="ORD-FUTURE")
    with time_machine.travel(MORNING, tick=False):
        response = agent_client.post(
            "/api/v1/shipments/ORD-FUTURE/assignments",
            {"partner": "own-fleet", "partner_reference": "VAN-9", "started_at": "2099-01-01T00:00:00Z"},
            format="json",
        )

    assert response.status_code == 201
    assert when(response.json()["started_at"]) == MORNING
