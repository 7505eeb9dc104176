"""The native partner API's door: Idempotency-Key, batch and body limits, rate limit, object-level access."""

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.utils import timezone

from partners.models import Custody, IdempotencyKey, InboundMessage
from tests.clock import at
from tests.factories import CustodyFactory, PartnerFactory
from tracking.models import TrackingEvent

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS_URL = "/api/partner/v1/events"
HANDOFFS_URL = "/api/partner/v1/handoffs"


def post(client, url, payload, **headers):
    return client.post(url, data=json.dumps(payload), content_type="application/json", headers=headers)


def event(**overrides):
    return {
        "reference": "SWIFT-77",
        "event_id": "ev-1",
        "status": "out_for_delivery",
        "occurred_at": at(60),
        **overrides,
    }


def accepted_messages():
    return InboundMessage.objects.exclude(state=InboundMessage.State.REJECTED)


# --- Idempotency-Key ---------------------------------------------------------------------------------


def test_same_idempotency_key_and_body_replays_the_first_response(custody, partner_client):
    client = partner_client(custody.partner)

    first = post(client, EVENTS_URL, event(), **{"Idempotency-Key": "k-1"})
    second = post(client, EVENTS_URL, event(), **{"Idempotency-Key": "k-1"})

    assert (first.status_code, second.status_code) == (202, 202)
    assert second.json() == first.json()
    assert accepted_messages().count() == 1
    assert TrackingEvent.objects.count() == 1


def test_same_idempotency_key_with_another_body_is_422(custody, partner_client):
    client = partner_client(custody.partner)
    post(client, EVENTS_URL, event(), **{"Idempotency-Key": "k-1"})

    response = post(client, EVENTS_URL, event(status="delivered"), **{"Idempotency-Key": "k-1"})

    assert response.status_code == 422
    assert response.json()["error"] == "unprocessable"
    assert accepted_messages().count() == 1
    assert list(TrackingEvent.objects.values_list("status", flat=True)) == ["out_for_delivery"]


def test_idempotency_key_still_in_flight_is_409(custody, partner_client):
    body = json.dumps(event()).encode()
    IdempotencyKey.objects.create(
        partner=custody.partner, key="k-1", request_hash=hashlib.sha256(body).hexdigest(), status_code=None
    )

    response = partner_client(custody.partner).post(
        EVENTS_URL, data=body, content_type="application/json", headers={"Idempotency-Key": "k-1"}
    )

    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert InboundMessage.objects.count() == 0
    assert TrackingEvent.objects.count() == 0


def test_idempotency_keys_belong_to_one_partner(custody, partner_client):
    other = CustodyFactory(partner_reference="SWIFT-77-OTHER")
    post(partner_client(custody.partner), EVENTS_URL, event(), **{"Idempotency-Key": "k-1"})

    response = post(
        partner_client(other.partner),
        EVENTS_URL,
        event(reference="SWIFT-77-OTHER", status="delivered"),
        **{"Idempotency-Key": "k-1"},
    )

    assert response.status_code == 202
    other.shipment.refresh_from_db()
    assert other.shipment.status == "delivered"


def test_a_refused_request_frees_its_idempotency_key(custody, partner_client):
    client = partner_client(custody.partner)
    refused = post(client, EVENTS_URL, event(reference="NOT-MINE"), **{"Idempotency-Key": "k-1"})

    retried = post(client, EVENTS_URL, event(), **{"Idempotency-Key": "k-1"})

    assert (refused.status_code, retried.status_code) == (404, 202)
    assert TrackingEvent.objects.count() == 1


# --- limits ---------------------------------------------------------------------------------------------


STEPS = ("picked_up", "in_transit", "out_for_delivery")


def test_batch_at_the_cap_is_accepted_and_one_more_is_refused(custody, partner_client, settings):
    settings.BATON = {**settings.BATON, "MAX_BATCH_EVENTS": 3}
    client = partner_client(custody.partner)

    # Three steps: the same status at the same time would be one step, whatever its event id.
    at_cap = post(
        client, EVENTS_URL, {"events": [event(event_id=str(i), status=s) for i, s in enumerate(STEPS)]}
    )
    over = post(client, EVENTS_URL, {"events": [event(event_id=f"x{i}") for i in range(4)]})

    assert at_cap.status_code == 202
    assert over.status_code == 400
    assert over.json()["fields"]["events"] == ["At most 3 events per request."]
    assert TrackingEvent.objects.count() == 3


def test_handoff_body_over_the_limit_is_413(custody, partner_client, settings):
    settings.BATON = {**settings.BATON, "MAX_BODY_BYTES": 100}
    to = PartnerFactory()

    handoff = {"reference": "SWIFT-77", "to_partner": to.slug, "to_reference": "X", "note": "n" * 200}
    response = post(partner_client(custody.partner), HANDOFFS_URL, handoff)

    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert Custody.objects.count() == 1


def test_partner_over_its_rate_limit_gets_429_with_retry_after(custody, partner_client):
    cache.clear()
    custody.partner.rate_limit_per_minute = 2
    custody.partner.save(update_fields=["rate_limit_per_minute"])
    neighbour = CustodyFactory(partner_reference="N-1")
    client = partner_client(custody.partner)

    # Frozen 20 s into a minute: the limit counts fixed one-minute windows.
    with time_machine.travel(datetime(2026, 11, 23, 9, 0, 20, tzinfo=UTC), tick=False):
        codes = [post(client, EVENTS_URL, event(event_id=str(i))).status_code for i in range(3)]
        throttled = post(client, EVENTS_URL, event(event_id="again"))
        neighbour_response = post(partner_client(neighbour.partner), EVENTS_URL, event(reference="N-1"))

    assert codes == [202, 202, 429]
    assert throttled.status_code == 429
    assert throttled.json()["error"] == "throttled"
    assert int(throttled["Retry-After"]) == 40
    assert neighbour_response.status_code == 202
    assert InboundMessage.objects.filter(partner=custody.partner).count() == 2


# --- object-level authorization and mass assignment ---------------------------------------------------


def test_handoff_of_a_shipment_the_partner_never_held_is_404(custody, partner_client):
    other = CustodyFactory(partner_reference="OTHER-1")

    handoff = {"reference": "OTHER-1", "to_partner": custody.partner.slug, "to_reference": "MINE-NOW"}
    response = post(partner_client(custody.partner), HANDOFFS_URL, handoff)

    assert response.status_code == 404
    assert response.json()["references"] == ["OTHER-1"]
    assert list(other.shipment.custody.values_list("partner_reference", flat=True)) == ["OTHER-1"]


def test_handoff_by_a_former_custodian_is_404(custody, partner_client):
    courier = PartnerFactory(slug="next-courier")
    first = {"reference": "SWIFT-77", "to_partner": "next-courier", "to_reference": "NC-1"}
    assert post(partner_client(custody.partner), HANDOFFS_URL, first).status_code == 201
    back = PartnerFactory(slug="third-courier")

    again = {"reference": "SWIFT-77", "to_partner": back.slug, "to_reference": "TC-1"}
    response = post(partner_client(custody.partner), HANDOFFS_URL, again)

    assert response.status_code == 404
    assert custody.shipment.custody.open().get().partner == courier


def test_former_custodian_may_still_report_but_is_flagged_not_applied(custody, partner_client):
    PartnerFactory(slug="next-courier")
    handoff = {
        "reference": "SWIFT-77",
        "to_partner": "next-courier",
        "to_reference": "NC-1",
        "occurred_at": (timezone.now() - timedelta(hours=1)).isoformat(),
    }
    assert post(partner_client(custody.partner), HANDOFFS_URL, handoff).status_code == 201

    after_handoff = timezone.now().isoformat()
    response = post(
        partner_client(custody.partner), EVENTS_URL, event(status="delivered", occurred_at=after_handoff)
    )

    assert response.status_code == 202
    stored = TrackingEvent.objects.get(kind="status")
    assert (stored.applied, stored.flags) == (False, ["former_custodian"])
    custody.shipment.refresh_from_db()
    assert custody.shipment.status != "delivered"


@pytest.mark.parametrize("field", ["partner", "custody", "handed_off_by", "started_at", "ended_at"])
def test_handoff_cannot_set_protected_fields(custody, partner_client, field):
    PartnerFactory(slug="next-courier")
    handoff = {"reference": "SWIFT-77", "to_partner": "next-courier", "to_reference": "NC-1", field: 1}

    response = post(partner_client(custody.partner), HANDOFFS_URL, handoff)

    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert custody.shipment.custody.count() == 1


@pytest.mark.parametrize(
    "overrides",
    [
        {"partner": "someone-else"},
        {"custody": 1},
        {"sequence": 1},
        {"dedupe_key": "x"},
        {"received_at": at(60)},
        {"kind": "handoff"},
    ],
    ids=lambda o: next(iter(o)),
)
def test_event_cannot_set_what_only_baton_decides(custody, partner_client, overrides):
    response = post(partner_client(custody.partner), EVENTS_URL, event(**overrides))

    assert response.status_code == 400
    assert set(response.json()["fields"]) == set(overrides)
    assert TrackingEvent.objects.count() == 0
