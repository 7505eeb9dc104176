"""Every actor against every shipment and every verb: no cross-tenant read or write.

The world: three partners and five shipments with deliberately colliding references (two partners
both call their job JOB-1; a third uses ORD-1, another shipment's merchant reference, as its own),
a shipment that changed hands (its former holder may still report, flagged, but not hand it on),
and one nobody holds. What a partner may touch is derived from the custody table, independently of
the code under test, and every verb is checked against it for every reference.
"""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from partners.models import Custody, InboundMessage
from tests.factories import CustodyFactory, PartnerFactory, ShipmentFactory
from tracking.models import Shipment, TrackingEvent

PARTNERS = ["alpha", "bravo", "charlie"]
REFERENCES = ["JOB-1", "A-3", "B-3", "ORD-1", "ORD-2", "ORD-3", "ORD-4", "ORD-5"]


@pytest.fixture
def world(db):
    partners = {slug: PartnerFactory(slug=slug) for slug in PARTNERS}
    shipments = {ref: ShipmentFactory(reference=ref) for ref in ["ORD-1", "ORD-2", "ORD-3", "ORD-4", "ORD-5"]}
    now = timezone.now()
    CustodyFactory(partner=partners["alpha"], shipment=shipments["ORD-1"], partner_reference="JOB-1")
    CustodyFactory(partner=partners["bravo"], shipment=shipments["ORD-2"], partner_reference="JOB-1")
    former = CustodyFactory(
        partner=partners["alpha"],
        shipment=shipments["ORD-3"],
        partner_reference="A-3",
        started_at=now - timedelta(days=1),
        ended_at=now - timedelta(hours=1),
    )
    CustodyFactory(
        partner=partners["bravo"],
        shipment=shipments["ORD-3"],
        partner_reference="B-3",
        started_at=now - timedelta(hours=1),
        handed_off_by=former,
    )
    CustodyFactory(partner=partners["charlie"], shipment=shipments["ORD-5"], partner_reference="ORD-1")
    return partners, shipments


def held(partner, reference: str, *, now_only: bool = False) -> Shipment | None:
    """The shipment `reference` names for this partner: its own reference first, then the merchant's."""
    custodies = Custody.objects.filter(partner=partner)
    if now_only:
        custodies = custodies.filter(ended_at=None)
    mine = (
        custodies.filter(partner_reference=reference).first()
        or custodies.filter(shipment__reference=reference).first()
    )
    return mine.shipment if mine else None


def partner_client(partner) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {partner.api_key}")
    return client


def event(reference: str, event_id: str) -> dict:
    return {
        "reference": reference,
        "event_id": event_id,
        "status": "in_transit",
        "occurred_at": timezone.now().isoformat(),
    }


def shipments_with_event(event_id: str) -> set[str]:
    return set(TrackingEvent.objects.filter(event_id=event_id).values_list("shipment__reference", flat=True))


# --- partners: report, hand off, upload ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("slug", PARTNERS)
@pytest.mark.parametrize("reference", REFERENCES)
def test_a_partner_reports_only_on_shipments_it_holds_or_held(world, slug, reference):
    partners, _ = world
    partner = partners[slug]
    target = held(partner, reference)

    response = partner_client(partner).post(
        "/api/partner/v1/events", event(reference, f"{slug}:{reference}"), format="json"
    )

    assert response.status_code == (202 if target else 404)
    assert shipments_with_event(f"{slug}:{reference}") == ({target.reference} if target else set())
    if target and held(partner, reference, now_only=True) is None:
        # A former holder's report is kept for the record but never applied.
        assert not TrackingEvent.objects.get(event_id=f"{slug}:{reference}").applied


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("slug", PARTNERS)
@pytest.mark.parametrize("reference", REFERENCES)
def test_a_partner_hands_on_only_shipments_it_holds_now(world, slug, reference):
    partners, shipments = world
    partner = partners[slug]
    target = held(partner, reference, now_only=True)
    receiver = "charlie" if slug != "charlie" else "alpha"
    chains_before = {ref: list(s.custody.values_list("pk", "ended_at")) for ref, s in shipments.items()}

    response = partner_client(partner).post(
        "/api/partner/v1/handoffs",
        {"reference": reference, "to_partner": receiver, "to_reference": f"HO-{slug}-{reference}"},
        format="json",
    )

    assert response.status_code == (201 if target else 404)
    changed = {
        ref
        for ref, s in shipments.items()
        if list(s.custody.values_list("pk", "ended_at")) != chains_before[ref]
    }
    assert changed == ({target.reference} if target else set())


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("slug", PARTNERS)
def test_an_upload_applies_only_the_rows_for_shipments_the_partner_holds_or_held(world, slug):
    partners, _ = world
    partner = partners[slug]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["reference", "status", "occurred_at", "event_id"])
    for reference in REFERENCES:
        writer.writerow([reference, "in_transit", timezone.now().isoformat(), f"csv:{slug}:{reference}"])

    response = partner_client(partner).post(
        "/api/partner/v1/uploads", out.getvalue().encode(), content_type="text/csv"
    )

    assert response.status_code == 200
    allowed = {reference for reference in REFERENCES if held(partner, reference)}
    refused = {REFERENCES[error["row"] - 2] for error in response.json()["errors"]}
    assert refused == set(REFERENCES) - allowed
    for reference in REFERENCES:
        target = held(partner, reference)
        assert shipments_with_event(f"csv:{slug}:{reference}") == ({target.reference} if target else set())


@pytest.mark.django_db(transaction=True)
def test_an_idempotency_key_replays_only_for_the_partner_that_used_it(world):
    partners, _ = world
    body = event("JOB-1", "idem-1")
    first = partner_client(partners["alpha"]).post(
        "/api/partner/v1/events", body, format="json", HTTP_IDEMPOTENCY_KEY="shared-key"
    )
    other = partner_client(partners["charlie"]).post(
        "/api/partner/v1/events", body, format="json", HTTP_IDEMPOTENCY_KEY="shared-key"
    )

    assert first.status_code == 202
    assert other.status_code == 404
    assert "message_id" not in other.json()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("slug", PARTNERS)
@pytest.mark.parametrize("credentials", ["none", "own key", "another partner's key"])
def test_a_native_partner_cannot_be_impersonated_through_the_webhook_door(world, slug, credentials):
    partners, _ = world
    client = APIClient()
    if credentials != "none":
        key_owner = (
            partners[slug]
            if credentials == "own key"
            else partners["charlie" if slug != "charlie" else "alpha"]
        )
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key_owner.api_key}")
    reference = "ORD-5" if slug == "charlie" else "JOB-1"

    response = client.post(f"/webhooks/native/{slug}/", event(reference, f"hook:{slug}"), format="json")

    assert response.status_code == 401
    assert shipments_with_event(f"hook:{slug}") == set()
    assert not InboundMessage.objects.filter(channel=InboundMessage.Channel.WEBHOOK).exists()


# --- reading: partners, agents, anonymous, customers ------------------------------------------


AGENT_READS = [
    "/api/v1/shipments",
    "/api/v1/shipments?search=ORD-1",
    "/api/v1/shipments/{ref}",
    "/api/v1/shipments/{ref}/timeline",
]


def agent_calls(reference: str) -> list[tuple[str, str, dict | None]]:
    reads = [("get", path.format(ref=reference), None) for path in AGENT_READS]
    writes = [
        (
            "post",
            "/api/v1/shipments",
            {"reference": "NEW-1", "customer_name": "N", "address": "1 A St", "postcode": "N1 1AA"},
        ),
        (
            "post",
            f"/api/v1/shipments/{reference}/assignments",
            {"partner": "charlie", "partner_reference": "C-9"},
        ),
    ]
    return reads + writes


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["anonymous", "non-staff user", "partner key", "customer token", "staff"])
def test_only_staff_reach_the_agent_api(world, who, django_user_model):
    partners, shipments = world
    client = APIClient()
    if who == "non-staff user":
        user = django_user_model.objects.create_user("caller", password="pw")
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    elif who == "staff":
        user = django_user_model.objects.create_user("agent", password="pw", is_staff=True)
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    elif who == "partner key":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {partners['alpha'].api_key}")
    elif who == "customer token":
        client.credentials(HTTP_AUTHORIZATION=f"Token {shipments['ORD-1'].token}")
    expected = {"anonymous": 401, "non-staff user": 403, "partner key": 401, "customer token": 401}

    for method, path, body in agent_calls("ORD-1"):
        response = getattr(client, method)(path, body, format="json") if body else client.get(path)
        if who == "staff":
            assert response.status_code in (200, 201), (path, response.content)
        else:
            assert response.status_code == expected[who], (who, path)
            assert b"ORD-1" not in response.content
    created = Shipment.objects.filter(reference="NEW-1").exists()
    assigned = Custody.objects.filter(partner_reference="C-9").exists()
    assert created == assigned == (who == "staff")


@pytest.mark.django_db
def test_a_customer_token_shows_its_own_shipment_and_no_other(world, client):
    _, shipments = world
    for owner in shipments.values():
        others = [s for s in shipments.values() if s.pk != owner.pk]
        public = client.get(f"/api/public/v1/track/{owner.token}")
        page = client.get(f"/t/{owner.token}")

        assert public.status_code == page.status_code == 200
        assert public.json()["reference"] == owner.reference
        for other in others:
            assert other.reference not in json.dumps(public.json())
            assert other.reference not in page.content.decode()
        assert owner.customer_phone not in page.content.decode()
        assert owner.address not in page.content.decode()


@pytest.mark.django_db
def test_a_token_that_is_not_a_customers_own_opens_nothing(world, client):
    partners, shipments = world
    expired = shipments["ORD-2"]
    expired.tracking_token_expires_at = timezone.now() - timedelta(seconds=1)
    expired.save(update_fields=["tracking_token_expires_at"])
    guesses = [
        expired.token,
        shipments["ORD-1"].tracking_token_hash,  # the stored hash is not a token
        shipments["ORD-1"].reference,
        partners["alpha"].api_key,
        shipments["ORD-1"].token[:-1],
    ]

    for guess in guesses:
        assert client.get(f"/api/public/v1/track/{guess}").status_code == 404
        assert client.get(f"/t/{guess}").status_code == 404
