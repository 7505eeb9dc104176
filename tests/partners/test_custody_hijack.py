"""One partner cannot take over another's job through a hand-off reference it chose."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from partners import services
from partners.models import Custody, InboundMessage
from tests.factories import CustodyFactory, PartnerFactory, ShipmentFactory
from tracking.models import Shipment

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alpha_and_beta(db):
    alpha = PartnerFactory(slug="alpha-fleet", name="Alpha Fleet")
    beta = PartnerFactory(slug="beta-courier", name="Beta Courier", adapter="native")
    job = CustodyFactory(
        partner=alpha, shipment=ShipmentFactory(reference="ORD-ALPHA"), partner_reference="A-1"
    )
    return alpha, beta, job


def beta_webhook(beta, reference: str, status: str = "delivered") -> InboundMessage:
    """What beta's verified webhook stores (the view calls record_inbound after the signature check)."""
    body = {"reference": reference, "status": status, "occurred_at": timezone.now().isoformat()}
    message = services.record_inbound(
        beta, channel=InboundMessage.Channel.WEBHOOK, body=json.dumps(body).encode(), headers={}
    )
    message.refresh_from_db()
    return message


def test_the_hijack_sequence_is_refused(alpha_and_beta, partner_client, agent_client):
    alpha, beta, _job = alpha_and_beta
    earlier = beta_webhook(beta, "T9")  # beta's own task T9, for a job Baton does not know yet
    assert earlier.state == InboundMessage.State.UNMATCHED

    handed = partner_client(alpha).post(
        "/api/partner/v1/handoffs",
        {"reference": "A-1", "to_partner": "beta-courier", "to_reference": "T9"},
        format="json",
    )

    assert handed.status_code == 201
    assert handed.json()["reference_confirmed"] is False
    # beta's earlier (and later) T9 reports are not bound to alpha's job by a reference alpha chose
    beta_webhook(beta, "T9")
    assert Shipment.objects.get(reference="ORD-ALPHA").status != "delivered"
    assert InboundMessage.objects.get(pk=earlier.pk).state == InboundMessage.State.UNMATCHED

    ShipmentFactory(reference="ORD-BETA")
    assigned = agent_client.post(
        "/api/v1/shipments/ORD-BETA/assignments",
        {"partner": "beta-courier", "partner_reference": "T9"},
        format="json",
    )

    assert assigned.status_code == 201  # operations' assignment is not blocked by alpha's proposal
    assert Shipment.objects.get(reference="ORD-BETA").status == "delivered"  # beta's T9 was this job
    assert Shipment.objects.get(reference="ORD-ALPHA").status != "delivered"

    # ORD-BETA is delivered, so its custody has ended (issue 9): a reference beta holds on another
    # open job is the one that cannot be confirmed for alpha's.
    ShipmentFactory(reference="ORD-GAMMA")
    gamma = agent_client.post(
        "/api/v1/shipments/ORD-GAMMA/assignments",
        {"partner": "beta-courier", "partner_reference": "T10"},
        format="json",
    )
    assert gamma.status_code == 201
    confirm = partner_client(beta).post(
        "/api/partner/v1/handoffs/confirm",
        {"reference": "ORD-ALPHA", "partner_reference": "T10"},
        format="json",
    )

    assert confirm.status_code == 409
    body = confirm.json()
    assert body["error"] == "reference_in_use"
    assert "ORD-GAMMA" not in json.dumps(body)
    assert "alpha" not in json.dumps(body).lower()

    confirmed = partner_client(beta).post(
        "/api/partner/v1/handoffs/confirm", {"reference": "T9", "partner_reference": "BETA-77"}, format="json"
    )

    assert confirmed.status_code == 200
    assert confirmed.json()["partner_reference"] == "BETA-77"
    assert Custody.objects.get(partner=beta, shipment__reference="ORD-ALPHA").reference_confirmed


def test_a_confirmed_reference_replays_the_receivers_reports_under_it(alpha_and_beta, partner_client):
    alpha, beta, _job = alpha_and_beta
    partner_client(alpha).post(
        "/api/partner/v1/handoffs",
        {"reference": "A-1", "to_partner": "beta-courier", "to_reference": "B-5"},
        format="json",
    )
    early = beta_webhook(beta, "B-5", status="picked_up")
    assert early.state == InboundMessage.State.UNMATCHED

    partner_client(beta).post("/api/partner/v1/handoffs/confirm", {"reference": "B-5"}, format="json")

    assert InboundMessage.objects.get(pk=early.pk).state == InboundMessage.State.PROCESSED
    assert Shipment.objects.get(reference="ORD-ALPHA").status == "picked_up"


def test_assigning_a_reference_the_partner_already_holds_is_a_json_409(alpha_and_beta, agent_client):
    ShipmentFactory(reference="ORD-TWO")

    response = agent_client.post(
        "/api/v1/shipments/ORD-TWO/assignments",
        {"partner": "alpha-fleet", "partner_reference": "A-1"},
        format="json",
    )

    assert response.status_code == 409
    assert response.json()["error"] == "reference_in_use"


def test_an_assignment_replays_only_messages_that_mention_its_references(alpha_and_beta, agent_client):
    _alpha, beta, _job = alpha_and_beta
    other = beta_webhook(beta, "UNRELATED-1")
    mentioned = beta_webhook(beta, "B-9", status="picked_up")
    ShipmentFactory(reference="ORD-NINE")
    attempts_before = InboundMessage.objects.get(pk=other.pk).attempts

    agent_client.post(
        "/api/v1/shipments/ORD-NINE/assignments",
        {"partner": "beta-courier", "partner_reference": "B-9"},
        format="json",
    )

    assert InboundMessage.objects.get(pk=mentioned.pk).state == InboundMessage.State.PROCESSED
    assert InboundMessage.objects.get(pk=other.pk).attempts == attempts_before


def test_a_started_at_in_the_past_stays_as_given(alpha_and_beta, agent_client):
    ShipmentFactory(reference="ORD-PAST")
    started = timezone.now() - timedelta(hours=2)

    agent_client.post(
        "/api/v1/shipments/ORD-PAST/assignments",
        {"partner": "beta-courier", "partner_reference": "P-1", "started_at": started.isoformat()},
        format="json",
    )

    assert Custody.objects.get(partner_reference="P-1").started_at == started
