"""A customer's request reaches whoever holds the job: callback, vendor API (recorded answers), or e-mail."""

import hashlib
import hmac
import json
from pathlib import Path

import jwt
import pytest
import requests
from django.core import mail
from requests.adapters import HTTPAdapter

from contactcentre import selfservice
from partners import http
from partners.adapters.base import DeliveryUpdate, PartnerError
from partners.adapters.doordash_drive import DoordashDriveAdapter, access_token
from tests.factories import CustodyFactory, PartnerFactory, ShipmentFactory
from tracking.models import Activity, OutboundMessage
from tracking.outbox import Sent

pytestmark = pytest.mark.django_db(transaction=True)
RECORDED = Path(__file__).parent.parent / "fixtures" / "partners" / "doordash_drive"
DOORDASH = {
    "developer_id": "14e84291-d900-4c20-8528-ed6ca8de660f",
    "key_id": "d4e87d9c-432b-4ab4-b06f-254ce7a1ef30",
    "signing_secret": "xVu_RIEHqVw0ISBOqklCrKTIrlxX47TiexoJIY8_naw",
}


class Recorded(HTTPAdapter):
    """Answers every request with a recorded response and keeps what was sent (no network)."""

    def __init__(self, status, fixture):
        super().__init__()
        self.status, self.body, self.sent = status, (RECORDED / fixture).read_bytes(), []

    def send(self, request, **kwargs):
        self.sent.append(request)
        response = requests.Response()
        response.status_code, response._content, response.url = self.status, self.body, request.url
        response.headers["Content-Type"] = "application/json"
        response.request = request
        return response


@pytest.fixture
def recorded(monkeypatch):
    def install(status, fixture):
        adapter = Recorded(status, fixture)

        def session():
            s = requests.Session()
            s.mount("https://", adapter)
            return s

        monkeypatch.setattr(http, "make_session", session)
        return adapter

    return install


def held_by(**partner_fields):
    partner = PartnerFactory(name="Swift Couriers", **partner_fields)
    return CustodyFactory(
        shipment=ShipmentFactory(reference="ORD-5"), partner=partner, partner_reference="D-1763"
    )


def test_instructions_go_to_a_native_partners_callback_signed(monkeypatch):
    custody = held_by(callback_url="https://partner.example.com/baton")
    posted = []

    def fake_post(url, body, headers):
        posted.append((url, body, headers))
        return Sent(status_code=200, response="ok")

    monkeypatch.setattr("partners.transports.post_json", fake_post)

    activity = selfservice.leave_instructions(custody.shipment, safe_place="porch", note="<b>blue</b> door")

    [(url, body, headers)] = posted
    payload = json.loads(body)
    assert url == "https://partner.example.com/baton"
    assert payload["partner_reference"] == "D-1763"
    assert payload["kind"] == "instructions"
    assert payload["fields"] == {"safe_place": "porch", "note": "<b>blue</b> door"}
    custody.partner.refresh_from_db()
    expected = hmac.new(custody.partner.callback_secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Baton-Signature"] == f"sha256={expected}"
    activity.refresh_from_db()
    assert activity.outbound.transport == "partner_callback"
    assert activity.outcome == "sent"


def test_instructions_update_the_delivery_through_doordash_drive(recorded):
    custody = held_by(adapter="doordash_drive", config=DOORDASH)
    answer = recorded(200, "update_delivery_200.json")

    activity = selfservice.leave_instructions(custody.shipment, safe_place="porch", note="the blue door")

    [request] = answer.sent
    assert request.method == "PATCH"
    assert request.url == "https://openapi.doordash.com/drive/v2/deliveries/D-1763"
    assert json.loads(request.body) == {"dropoff_instructions": "Safe place: porch\nNote: the blue door"}
    token = request.headers["Authorization"].removeprefix("Bearer ")
    assert jwt.get_unverified_header(token)["dd-ver"] == "DD-JWT-V1"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == DOORDASH["developer_id"]
    assert claims["kid"] == DOORDASH["key_id"]
    message = OutboundMessage.objects.get(pk=activity.outbound_id)
    assert message.transport == "partner_api"
    assert message.state == OutboundMessage.State.SENT
    assert message.external_id == "1343593413"
    assert message.delivery_attempts.get().status_code == 200


def test_a_refused_doordash_update_fails_for_good_with_the_vendors_answer(recorded):
    custody = held_by(adapter="doordash_drive", config=DOORDASH)
    recorded(400, "update_delivery_400.json")

    activity = selfservice.leave_instructions(custody.shipment, note="ring twice")

    message = OutboundMessage.objects.get(pk=activity.outbound_id)
    assert message.state == OutboundMessage.State.FAILED
    assert "no longer be updated" in message.delivery_attempts.get().response_excerpt


def test_a_doordash_outage_is_retried(recorded):
    custody = held_by(adapter="doordash_drive", config=DOORDASH)
    recorded(503, "update_delivery_503.json")

    activity = selfservice.leave_instructions(custody.shipment, note="ring twice")

    assert OutboundMessage.objects.get(pk=activity.outbound_id).state == OutboundMessage.State.RETRYING


def test_doordash_jwt_is_signed_with_the_decoded_secret():
    token = access_token(DOORDASH, now=1_700_000_000)
    secret = DOORDASH["signing_secret"]
    import base64

    key = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    claims = jwt.decode(token, key, algorithms=["HS256"], audience="doordash", options={"verify_exp": False})
    assert claims["exp"] - claims["iat"] == 300


def test_doordash_without_credentials_or_for_other_requests_cannot_update():
    adapter = DoordashDriveAdapter()
    assert not adapter.can_update({}, "instructions")
    assert not adapter.can_update(DOORDASH, "cancel")
    with pytest.raises(PartnerError):
        adapter.update_delivery(None, config={}, reference="D-1", update=DeliveryUpdate(kind="instructions"))


def test_without_callback_or_api_the_partners_operations_contact_gets_an_email():
    custody = held_by(ops_email="ops@swift.example")

    activity = selfservice.request_reschedule(
        custody.shipment, window=next(iter(dict(selfservice.public.reschedule_choices(custody.shipment))))
    )

    [email] = mail.outbox
    assert email.to == ["ops@swift.example"]
    assert email.subject == "Customer request for job D-1763: a new delivery day"
    assert "Deliver instead on" in email.body
    assert activity.outbound.transport == "partner_email"


def test_a_holder_with_no_channel_is_recorded_for_agents_to_pass_on():
    custody = held_by()

    activity = selfservice.leave_instructions(custody.shipment, neighbour="No. 12")

    assert activity.outbound is None
    assert "Not sent: pass it on" in activity.summary
    assert Activity.objects.filter(kind="instruction").count() == 1
