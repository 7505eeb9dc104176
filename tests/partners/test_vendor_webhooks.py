"""Every recorded vendor sample through the real door: HTTP, the vendor's verification, storage, effect."""

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import time_machine

from partners.models import InboundMessage
from tests.clock import at
from tests.conftest import wait_for
from tests.factories import CustodyFactory, PartnerFactory
from tests.partners.samples import (
    JOURNEY_INDEX,
    VENDORS,
    auth_headers,
    body_of,
    create_partner,
    hold_jobs,
    post_webhook,
    samples,
    sent_at,
    vendor_secret,
)
from tracking.models import Shipment, TrackingEvent

pytestmark = pytest.mark.django_db(transaction=True)

# Vendors that sign the body; the others (DoorDash, Stuart, Gophr) send a static credential header and
# document no body signature, so a changed body with the right credential is, by their design, theirs.
SIGNED_VENDORS = ["aftership", "easypost", "onfleet", "samsara", "uber_direct", "wolt_drive"]
# A credential of the same shape as the vendor's, but not the partner's.
WRONG_SECRETS = {
    "onfleet": "00" * 27,
    "samsara": base64.b64encode(b"another-samsara-webhook-secret").decode(),
    "doordash_drive": "Basic " + base64.b64encode(b"someone:else").decode(),
    "stuart": "Bearer someone-elses-token",
}
NO_STATUS_EFFECTS = {
    "location_only": {"location"},
    "eta_location_only": {"eta", "location"},
    "info_only": None,
}


def statuses(shipments) -> list[str]:
    return [Shipment.objects.get(pk=s.pk).status for s in shipments]


def replay_samples(vendor, post, settle) -> None:
    """Send every sample in arrival order and check its expected effect right after it."""
    partner = create_partner(vendor)
    shipments = hold_jobs(partner, vendor)
    for entry in samples(vendor):
        before = statuses(shipments)

        code, answer = post(partner, body_of(vendor, entry["file"]), entry["headers"])

        assert code == 200, (entry["file"], answer)
        message = settle(answer["message_id"])
        assert message.state == InboundMessage.State.PROCESSED, (entry["file"], message.error)
        after = statuses(shipments)
        effect = entry["expected_effect"]
        if effect == "apply":
            assert after[JOURNEY_INDEX.get(entry["journey"], 0)] == entry["expected_status"], entry["file"]
            continue
        assert effect in NO_STATUS_EFFECTS, effect
        assert after == before, entry["file"]
        kinds = set(TrackingEvent.objects.filter(message=message).values_list("kind", flat=True))
        assert "status" not in kinds
        if NO_STATUS_EFFECTS[effect]:
            assert kinds == NO_STATUS_EFFECTS[effect], entry["file"]


def client_poster(client):
    def post(partner, body, headers):
        response = post_webhook(client, partner, body, headers)
        return response.status_code, response.json()

    return post


@pytest.mark.parametrize("vendor", VENDORS)
def test_every_sample_gives_its_expected_status_and_effect(vendor, client):
    replay_samples(vendor, client_poster(client), lambda pk: InboundMessage.objects.get(pk=pk))


@pytest.mark.live
@pytest.mark.parametrize("vendor", VENDORS)
def test_every_sample_through_a_live_worker(vendor, live_worker, live_server):
    import requests

    def post(partner, body, headers):
        with sent_at(headers):
            response = requests.post(
                f"{live_server.url}/webhooks/{partner.adapter}/{partner.slug}/",
                data=body,
                headers=headers,
                timeout=10,
            )
        return response.status_code, response.json()

    def settle(pk):
        waiting = InboundMessage.State.RECEIVED
        return wait_for(lambda: InboundMessage.objects.exclude(state=waiting).filter(pk=pk).first())

    replay_samples(vendor, post, settle)


# --- refused at the door ---------------------------------------------------------------------------


def first_sample(vendor) -> tuple[bytes, dict]:
    entry = samples(vendor)[0]
    return body_of(vendor, entry["file"]), entry["headers"]


def assert_refused_and_nothing_changed(response, shipments) -> None:
    assert response.status_code == 401, response.content
    assert response.json()["error"] == "authentication_failed"
    assert InboundMessage.objects.count() == 0
    assert TrackingEvent.objects.count() == 0
    assert statuses(shipments) == ["pending"] * len(shipments)


def tampered(vendor, body: bytes) -> bytes:
    if vendor == "wolt_drive":  # the body is a JWT: change its claims, keep Wolt's signature
        header, claims, signature = json.loads(body)["token"].split(".")
        decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
        decoded["type"] = "order.delivered"
        forged = base64.urlsafe_b64encode(json.dumps(decoded).encode()).rstrip(b"=").decode()
        return json.dumps({"token": f"{header}.{forged}.{signature}"}).encode()
    if b"2025-06" in body:
        return body.replace(b"2025-06", b"2025-07", 1)
    return body.replace(b"1749", b"1750", 1)  # an epoch time


@pytest.mark.parametrize("vendor", SIGNED_VENDORS)
def test_tampered_body_is_refused(vendor, client):
    partner = create_partner(vendor)
    shipments = hold_jobs(partner, vendor)
    body, headers = first_sample(vendor)
    assert tampered(vendor, body) != body

    response = post_webhook(client, partner, tampered(vendor, body), headers)

    assert_refused_and_nothing_changed(response, shipments)


@pytest.mark.parametrize("vendor", VENDORS)
def test_wrong_secret_is_refused(vendor, client):
    partner = create_partner(
        vendor, secret=WRONG_SECRETS.get(vendor, "not-the-secret-the-vendor-issued-to-us")
    )
    shipments = hold_jobs(partner, vendor)

    response = post_webhook(client, partner, *first_sample(vendor))

    assert_refused_and_nothing_changed(response, shipments)


@pytest.mark.parametrize("vendor", VENDORS)
def test_missing_signature_headers_are_refused(vendor, client):
    partner = create_partner(vendor)
    shipments = hold_jobs(partner, vendor)
    body, headers = first_sample(vendor)
    if vendor == "wolt_drive":  # Wolt's proof travels in the body: the token is what goes missing
        body = json.dumps({"type": "order.received"}).encode()
    stripped = {k: v for k, v in headers.items() if k not in auth_headers(samples(vendor)[0])}

    response = post_webhook(client, partner, body, stripped)

    assert_refused_and_nothing_changed(response, shipments)


@pytest.mark.parametrize("header", ["X-Samsara-Timestamp", "X-Samsara-Signature"])
def test_samsara_without_either_of_its_two_headers_is_refused(header, client):
    partner = create_partner("samsara")
    shipments = hold_jobs(partner, "samsara")
    body, headers = first_sample("samsara")
    stamp = int(headers["X-Samsara-Timestamp"])

    with time_machine.travel(datetime.fromtimestamp(stamp, UTC)):
        response = post_webhook(client, partner, body, {k: v for k, v in headers.items() if k != header})

    assert_refused_and_nothing_changed(response, shipments)


def test_samsara_stale_timestamp_is_refused(client):
    partner = create_partner("samsara")
    shipments = hold_jobs(partner, "samsara")
    body, headers = first_sample("samsara")
    late = datetime.fromtimestamp(int(headers["X-Samsara-Timestamp"]), UTC) + timedelta(minutes=6)

    with time_machine.travel(late):
        response = client.post(
            f"/webhooks/samsara/{partner.slug}/",
            data=body,
            content_type="application/json",
            headers={k: v for k, v in headers.items() if k != "Content-Type"},
        )

    assert_refused_and_nothing_changed(response, shipments)


def test_wolt_token_past_its_expiry_is_refused(client):
    partner = create_partner("wolt_drive")
    shipments = hold_jobs(partner, "wolt_drive")
    claims = jwt.decode(
        json.loads(first_sample("wolt_drive")[0])["token"], options={"verify_signature": False}
    )
    claims["exp"] = int((datetime.now(UTC) - timedelta(hours=1)).timestamp())
    body = json.dumps({"token": jwt.encode(claims, vendor_secret("wolt_drive"), algorithm="HS256")}).encode()

    response = post_webhook(client, partner, body, {"Content-Type": "application/json"})

    assert_refused_and_nothing_changed(response, shipments)


@pytest.mark.parametrize("vendor", VENDORS)
def test_previous_secret_still_works_while_the_vendor_rotates(vendor, client):
    partner = create_partner(vendor, secret=WRONG_SECRETS.get(vendor, "the-new-secret-issued-after-rotation"))
    partner.previous_webhook_secret = vendor_secret(vendor)
    partner.save(update_fields=["previous_webhook_secret"])
    hold_jobs(partner, vendor)

    response = post_webhook(client, partner, *first_sample(vendor))

    assert response.status_code == 200
    assert InboundMessage.objects.get().state == InboundMessage.State.PROCESSED


# --- handshake, duplicates, addressing ----------------------------------------------------------------


def test_onfleet_check_is_echoed(client):
    partner = create_partner("onfleet")

    response = client.get(f"/webhooks/onfleet/{partner.slug}/", {"check": "Zx8f-41a"})

    assert response.status_code == 200
    assert response.content == b"Zx8f-41a"
    assert InboundMessage.objects.count() == 0


def test_handshake_of_a_vendor_without_one_is_404(client):
    partner = create_partner("stuart")

    response = client.get(f"/webhooks/stuart/{partner.slug}/", {"check": "Zx8f-41a"})

    assert response.status_code == 404


@pytest.mark.parametrize("vendor", VENDORS)
def test_duplicate_webhook_is_acknowledged_but_recorded_once(vendor, client):
    partner = create_partner(vendor)
    shipments = hold_jobs(partner, vendor)
    body, headers = first_sample(vendor)

    first = post_webhook(client, partner, body, headers)
    events = list(TrackingEvent.objects.values_list("pk", flat=True).order_by("pk"))
    state = statuses(shipments)
    again = post_webhook(client, partner, body, headers)

    assert (first.status_code, again.status_code) == (200, 200)
    assert events
    assert list(TrackingEvent.objects.values_list("pk", flat=True).order_by("pk")) == events
    assert statuses(shipments) == state
    assert InboundMessage.objects.get(pk=again.json()["message_id"]).state == InboundMessage.State.PROCESSED


def test_unknown_partner_slug_gets_the_same_answer_as_a_bad_signature(client):
    create_partner("gophr")
    body, headers = first_sample("gophr")

    api_key = {"API-KEY": headers["API-KEY"]}
    response = client.post(
        "/webhooks/gophr/nobody-we-know/", data=body, content_type="application/json", headers=api_key
    )
    bad_signature = client.post(
        "/webhooks/gophr/gophr/", data=body, content_type="application/json", headers={"API-KEY": "wrong"}
    )

    assert response.status_code == bad_signature.status_code == 401
    assert response.json() == bad_signature.json()
    assert InboundMessage.objects.count() == 0


def test_adapter_that_is_not_the_partners_is_refused(client):
    partner = create_partner("uber_direct")
    body, headers = first_sample("uber_direct")

    response = post_webhook(client, partner, body, headers)  # sanity: the right door works
    wrong_door = client.post(f"/webhooks/onfleet/{partner.slug}/", data=body, content_type="application/json")

    assert response.status_code == 200
    assert wrong_door.status_code == 401
    assert InboundMessage.objects.count() == 1


@pytest.mark.parametrize("adapter", ["native", "csv"])
def test_formats_without_a_webhook_refuse_every_webhook(adapter, client):
    partner = PartnerFactory(slug="own-fleet", adapter=adapter, kind="fleet")
    CustodyFactory(partner=partner, partner_reference="OF-1")
    body = json.dumps({"reference": "OF-1", "status": "delivered", "occurred_at": at(60)})

    response = client.post(f"/webhooks/{adapter}/own-fleet/", data=body, content_type="application/json")

    assert response.status_code == 401
    assert response.json()["error"] == "authentication_failed"
    assert InboundMessage.objects.count() == 0


def test_webhook_messages_keep_no_credentials(client):
    partner = create_partner("gophr")
    body, headers = first_sample("gophr")

    response = post_webhook(
        client, partner, body, {**headers, "Cookie": "sessionid=abc", "Authorization": "Basic eA=="}
    )

    stored = InboundMessage.objects.get(pk=response.json()["message_id"]).headers
    assert response.status_code == 200
    assert not {"api-key", "cookie", "authorization"} & set(stored)


@pytest.mark.parametrize("vendor", ["onfleet", "stuart"])
def test_a_handshake_is_answered_the_same_for_a_real_and_an_unknown_slug(vendor, client):
    partner = create_partner(vendor)

    real = client.get(f"/webhooks/{vendor}/{partner.slug}/", {"check": "Zx8f-41a"})
    unknown = client.get(f"/webhooks/{vendor}/nobody-we-know/", {"check": "Zx8f-41a"})

    assert (real.status_code, real.content) == (unknown.status_code, unknown.content)
