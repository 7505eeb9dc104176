"""The customer's page: words, lateness, holder, next steps, position, proof behind a second factor."""

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from tests.factories import CustodyFactory, PartnerFactory, ShipmentFactory
from tracking import public
from tracking.statuses import Reason, Status

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


def post_events(partner_client, custody, *events):
    response = partner_client(custody.partner).post(
        "/api/partner/v1/events",
        {"events": [{"reference": custody.partner_reference, **e} for e in events]},
        format="json",
    )
    assert response.status_code in (200, 201, 202), response.content
    custody.shipment.refresh_from_db()
    return custody.shipment


def ago(minutes):
    return (timezone.now() - timedelta(minutes=minutes)).isoformat()


def test_page_says_running_late_with_the_new_estimate_when_the_window_has_passed(client, custody):
    shipment = custody.shipment
    now = timezone.now()
    shipment.promised_from, shipment.promised_until = now - timedelta(hours=3), now - timedelta(hours=1)
    shipment.eta_earliest, shipment.eta_latest = now + timedelta(minutes=30), now + timedelta(minutes=90)
    shipment.eta_source = "baton"
    shipment.save()

    body = client.get(f"/api/public/v1/track/{shipment.token}").json()

    assert body["running_late"] is True
    start = timezone.localtime(shipment.eta_earliest).strftime("%H:%M")
    end = timezone.localtime(shipment.eta_latest).strftime("%H:%M")
    assert body["late_text"] == f"Running late: now expected between {start} and {end}."
    assert body["eta_earliest"]
    assert body["estimate_source"] == "baton"
    page = client.get(f"/t/{shipment.token}").content.decode()
    assert "Running late: now expected between" in page


def test_a_passed_partner_eta_without_a_new_one_says_we_are_asking_the_holder(
    client, custody, partner_client
):
    shipment = post_events(
        partner_client, custody, {"status": "out_for_delivery", "occurred_at": ago(90), "eta": ago(30)}
    )

    body = client.get(f"/api/public/v1/track/{shipment.token}").json()

    assert body["running_late"] is True
    assert "asking Swift Couriers for a new time" in body["late_text"]


def test_on_time_falls_back_to_the_partner_eta(client, custody, partner_client):
    eta = (timezone.now() + timedelta(hours=1)).isoformat()
    shipment = post_events(
        partner_client, custody, {"status": "out_for_delivery", "occurred_at": ago(5), "eta": eta}
    )

    body = client.get(f"/api/public/v1/track/{shipment.token}").json()

    assert body["running_late"] is False
    assert body["eta_earliest"] == body["eta_latest"] == body["eta"]
    assert body["estimate_source"] == "partner"


def test_holder_names_the_subcontractor_and_the_legs_never_a_person(client, partner_client):
    shipment = ShipmentFactory()
    fleet = PartnerFactory(name="Acme Fleet")
    gig = PartnerFactory(name="Swift Couriers")
    first = CustodyFactory(
        shipment=shipment,
        partner=fleet,
        started_at=timezone.now() - timedelta(hours=3),
        ended_at=timezone.now() - timedelta(hours=1),
    )
    CustodyFactory(
        shipment=shipment, partner=gig, started_at=timezone.now() - timedelta(hours=1), handed_off_by=first
    )

    body = client.get(f"/api/public/v1/track/{shipment.token}").json()

    assert body["holder"]["name"] == "Swift Couriers"
    assert body["holder"]["text"] == "With our delivery partner Swift Couriers"
    assert [leg["name"] for leg in body["holder"]["legs"]] == ["Acme Fleet", "Swift Couriers"]
    page = client.get(f"/t/{shipment.token}").content.decode()
    assert "With our delivery partner Swift Couriers" in page
    assert "since" in page


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (Reason.RECIPIENT_NOT_HOME, "Tell us a safe place or a neighbour"),
        (Reason.ACCESS_RESTRICTED, "Add an access code"),
        (Reason.REFUSED, "goes back to the sender"),
    ],
)
def test_after_a_failed_attempt_the_page_says_what_happens_next(
    client, custody, partner_client, reason, expected
):
    shipment = post_events(
        partner_client, custody, {"status": "attempt_failed", "reason": reason, "occurred_at": ago(5)}
    )

    body = client.get(f"/api/public/v1/track/{shipment.token}").json()

    assert shipment.status == Status.ATTEMPT_FAILED
    assert any(expected in step for step in body["next_steps"])
    assert expected in client.get(f"/t/{shipment.token}").content.decode()


def test_courier_position_is_hidden_when_far_or_stale(client, custody, partner_client):
    shipment = custody.shipment
    post_events(
        partner_client,
        custody,
        {"status": "out_for_delivery", "occurred_at": ago(60)},
        {"kind": "location", "location": {"lat": 51.60, "lng": -0.13}, "occurred_at": ago(2)},  # ~11 km
    )
    assert client.get(f"/api/public/v1/track/{shipment.token}").json()["courier_nearby"] is None

    post_events(
        partner_client,
        custody,
        {"kind": "location", "location": {"lat": 51.504, "lng": -0.128}, "occurred_at": ago(1)},
    )
    nearby = client.get(f"/api/public/v1/track/{shipment.token}").json()["courier_nearby"]
    assert nearby["distance_m"] == 100
    assert nearby["text"] == "Your courier is about 100 m away."
    page = client.get(f"/t/{shipment.token}").content.decode()
    assert "<svg" in page
    assert 'aria-label="Your courier is about 100 m away."' in page


@pytest.fixture
def delivered(custody, partner_client):
    return post_events(
        partner_client,
        custody,
        {
            "status": "delivered",
            "occurred_at": ago(5),
            "location": {"lat": 51.50341, "lng": -0.12761},
            "proof": {
                "photo_urls": ["https://img.example.com/p/1.jpg"],
                "signature_url": "https://img.example.com/s/1.png",
                "recipient_name": "Grace Hopper",
            },
        },
    )


def test_proof_of_delivery_needs_reference_and_postcode(client, delivered):
    url = f"/t/{delivered.token}"
    page = client.get(url).content.decode()
    assert "img.example.com" not in page
    assert "Show proof of delivery" in page
    assert client.get(f"/api/public/v1/track/{delivered.token}").json()["proof"] is None

    wrong = client.post(f"{url}/proof", {"reference": delivered.reference, "postcode": "E1 6AN"})
    assert wrong.status_code == 400
    assert "do not match" in wrong.content.decode()
    assert "img.example.com" not in wrong.content.decode()

    right = client.post(f"{url}/proof", {"reference": delivered.reference.lower(), "postcode": "sw1a2aa"})
    assert right.status_code == 302
    page = client.get(url).content.decode()
    assert "https://img.example.com/p/1.jpg" in page
    assert "Received by Grace" in page
    assert "Hopper" not in page
    assert "At your address" in page


def test_proof_cookie_does_not_unlock_another_shipment(client, delivered):
    other = ShipmentFactory()
    value = public.proof_unlock_value(delivered)
    assert public.proof_unlocked(delivered, value)
    assert not public.proof_unlocked(other, value)
    assert not public.proof_unlocked(delivered, value + "x")


def test_proof_attempts_are_rate_limited_per_link(client, delivered, settings):
    settings.BATON = {**settings.BATON, "CUSTOMER_RATE_LIMIT": 3}
    url = f"/t/{delivered.token}/proof"
    codes = [client.post(url, {"reference": "X", "postcode": "E1 6AN"}).status_code for _ in range(5)]
    assert codes == [400, 400, 400, 429, 429]


def test_lookup_gives_the_same_answer_for_no_such_order_and_wrong_postcode(client, db):
    shipment = ShipmentFactory(reference="ORD-LOOK")

    unknown = client.post("/track/", {"reference": "ORD-NOPE", "postcode": "SW1A 2AA"})
    wrong = client.post("/track/", {"reference": "ORD-LOOK", "postcode": "E1 6AN"})

    def answer(response, *typed):
        text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())
        for value in typed:
            text = text.replace(value, "")
        return text

    assert unknown.status_code == wrong.status_code == 400
    assert answer(unknown, "ORD-NOPE", "SW1A 2AA") == answer(wrong, "ORD-LOOK", "E1 6AN")
    assert "could not find a delivery with that order reference and postcode" in answer(wrong)

    found = client.post("/track/", {"reference": "ord-look", "postcode": "sw1a 2aa"})
    assert found.status_code == 302
    assert found["Location"].startswith("/t/s.")
    page = client.get(found["Location"])
    assert page.status_code == 200
    assert "ORD-LOOK" in page.content.decode()
    assert public.find_shipment(found["Location"][3:]) == shipment


def test_lookup_is_rate_limited_per_ip(client, db, settings):
    settings.BATON = {**settings.BATON, "LOOKUP_RATE_LIMIT_IP": 2}
    codes = [
        client.post("/track/", {"reference": f"ORD-{i}", "postcode": "E1 6AN"}).status_code for i in range(3)
    ]
    assert codes == [400, 400, 429]


def test_a_new_tracking_token_revokes_signed_links(db):
    shipment = ShipmentFactory()
    link = public.link_token(shipment)
    assert public.find_shipment(link) == shipment

    shipment.issue_tracking_token()
    shipment.save()

    assert public.find_shipment(link) is None
    assert public.find_shipment(link[:-2] + "zz") is None


def test_rate_limit_allows_requests_when_the_cache_is_down(client, custody, monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "add", broken)
    response = client.post(f"/t/{custody.shipment.token}/proof", {"reference": "X", "postcode": "Y"})
    assert response.status_code == 400


def test_page_speaks_french_when_the_browser_asks(client, custody):
    page = client.get(f"/t/{custody.shipment.token}", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert '<html lang="fr">' in page
    assert "Signaler un problème" in page
    body = client.get(f"/api/public/v1/track/{custody.shipment.token}", HTTP_ACCEPT_LANGUAGE="fr").json()
    assert body["status_label"] == "Commande reçue"


def test_page_forms_carry_csrf_tokens(custody):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    page = strict.get(f"/t/{custody.shipment.token}").content.decode()
    assert page.count("csrfmiddlewaretoken") >= 5
    refused = strict.post(f"/t/{custody.shipment.token}/instructions", {"note": "hi"})
    assert refused.status_code == 403


def test_page_and_json_cost_a_constant_number_of_queries(
    client, custody, partner_client, django_assert_num_queries
):
    shipment = custody.shipment
    with django_assert_num_queries(4):  # nothing reported, no hand-off, no request yet
        client.get(f"/t/{shipment.token}")
    post_events(partner_client, custody, {"status": "out_for_delivery", "occurred_at": ago(40)})
    for i in range(3):
        client.post(f"/t/{shipment.token}/instructions", {"note": f"note {i}"})
    with django_assert_num_queries(4):
        small = client.get(f"/t/{shipment.token}")
    post_events(
        partner_client,
        custody,
        *[
            {
                "kind": "location",
                "location": {"lat": 51.50 + i / 1000, "lng": -0.13},
                "occurred_at": ago(30 - i),
            }
            for i in range(25)
        ],
    )
    for i in range(5):
        client.post(f"/t/{shipment.token}/problem", {"reason": "other", "description": f"d{i}"})

    with django_assert_num_queries(4):
        large = client.get(f"/t/{shipment.token}")
    with django_assert_num_queries(4):
        client.get(f"/api/public/v1/track/{shipment.token}")

    assert small.status_code == large.status_code == 200


def test_json_matches_its_documented_serializer(client, custody, partner_client):
    from tracking.serializers import PublicTrackingSerializer

    shipment = post_events(
        partner_client,
        custody,
        {"status": "out_for_delivery", "occurred_at": ago(30)},
        {"kind": "location", "location": {"lat": 51.504, "lng": -0.128}, "occurred_at": ago(1)},
    )
    client.post(f"/t/{shipment.token}/instructions", {"note": "ring twice"})
    shipment.refresh_from_db()

    body = client.get(f"/api/public/v1/track/{shipment.token}").json()

    assert body == PublicTrackingSerializer(public.public_tracking(shipment)).data
    assert body["requests"][0]["summary"] == "note: ring twice"


def test_a_newer_partner_eta_outside_the_stored_window_wins_until_the_window_is_refreshed(client, custody):
    shipment = custody.shipment
    now = timezone.now()
    shipment.eta_earliest, shipment.eta_latest = now + timedelta(minutes=10), now + timedelta(minutes=40)
    shipment.eta_source = "partner"
    shipment.eta = now + timedelta(hours=2)  # reconciliation stored the partner's new ETA just now
    shipment.promised_until = now + timedelta(hours=3)
    shipment.save()

    body = client.get(f"/api/public/v1/track/{shipment.token}").json()

    assert body["eta_earliest"] == body["eta_latest"] == body["eta"]
    assert body["running_late"] is False
