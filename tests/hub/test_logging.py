"""Structured logs: a request id from the webhook to the worker's line for its message; nothing secret."""

import json
import logging

import pytest

from hub.logs import REDACTED, bind_request_id, redact, request_id_from, scrub
from partners import services
from partners.models import InboundMessage
from tests.factories import CustodyFactory, ShipmentFactory
from tests.log_scan import JsonCapture, leaks
from tests.partners.samples import body_of, create_partner, hold_jobs, post_webhook, samples


@pytest.fixture
def json_lines():
    """The records logged during the test, rendered as production renders them, parsed back."""
    capture = JsonCapture()
    root = logging.getLogger()
    root.addHandler(capture)
    yield capture
    root.removeHandler(capture)


def parsed(capture: JsonCapture) -> list[dict]:
    return [json.loads(line) for line in capture.lines]


def test_a_sane_request_id_is_kept_and_echoed(client):
    response = client.get("/healthz-not-a-page", HTTP_X_REQUEST_ID="lb-7f3a9c1e-0001")

    assert response["X-Request-ID"] == "lb-7f3a9c1e-0001"


@pytest.mark.parametrize(
    "header", ["", "short", "x" * 200, "has space in it", 'quote"injection', "é-unicode-id"]
)
def test_an_absent_or_odd_request_id_is_replaced_by_a_new_one(header, client):
    response = client.get("/console/", HTTP_X_REQUEST_ID=header)

    assert response["X-Request-ID"] != header
    assert len(response["X-Request-ID"]) == 32
    assert request_id_from(header) != request_id_from(header)  # generated afresh each time


@pytest.mark.django_db(transaction=True)
def test_the_webhooks_request_id_reaches_the_worker_line_for_its_message(client, json_lines):
    partner = create_partner("onfleet")
    hold_jobs(partner, "onfleet")
    entry = samples("onfleet")[0]

    response = post_webhook(
        client,
        partner,
        body_of("onfleet", entry["file"]),
        {**entry["headers"], "X-Request-ID": "rid-webhook-0042"},
    )
    message = InboundMessage.objects.get(pk=response.json()["message_id"])
    assert message.request_id == "rid-webhook-0042"
    # As in the worker: a fresh context, then the task runs the stored message (here again, as a replay).
    InboundMessage.objects.filter(pk=message.pk).update(state=InboundMessage.State.RECEIVED)
    bind_request_id("")
    json_lines.lines.clear()

    assert services.process_inbound(message.pk) == "processed"

    (finished,) = [line for line in parsed(json_lines) if line["event"] == "inbound message finished"]
    assert finished["request_id"] == "rid-webhook-0042"
    assert finished["message_id"] == message.pk
    assert finished["state"] == "processed"
    assert finished["level"] == "info"
    assert "timestamp" in finished


@pytest.mark.django_db
def test_every_request_logs_one_line_with_its_route_and_id(client, json_lines):
    shipment = ShipmentFactory()

    client.get(f"/t/{shipment.token}", HTTP_X_REQUEST_ID="rid-customer-page-1")

    (line,) = [line for line in parsed(json_lines) if line["event"] == "request finished"]
    assert line["route"] == "tracking-page"
    assert line["request_id"] == "rid-customer-page-1"
    assert line["status"] == 200
    assert shipment.token not in json.dumps(parsed(json_lines))


@pytest.mark.django_db(transaction=True)
def test_no_secret_key_or_contact_detail_reaches_a_log_line(client, partner_client, json_lines):
    partner = create_partner("onfleet")
    shipment = ShipmentFactory(customer_phone="+44 7700 900123", customer_email="jo.bloggs@example.com")
    CustodyFactory(partner=partner, shipment=shipment, partner_reference="J-1")
    log = logging.getLogger("partners.test")
    api_key = partner.api_key

    # What careless code could log: a partner's headers, a customer record, an error quoting both.
    log.warning("webhook headers", extra={"headers": {"Authorization": f"Bearer {api_key}", "X-Trace": "1"}})
    log.info(
        "customer",
        extra={"customer_phone": shipment.customer_phone, "customer_email": shipment.customer_email},
    )
    log.error("partner said: call %s or mail %s", "07700 900123", "jo.bloggs@example.com")
    try:
        raise ValueError(f"bad signature for secret={partner.webhook_secret} and key {api_key}")
    except ValueError:
        log.exception("verification blew up")
    # And the real doors, credentials and all.
    partner_client(partner).post("/api/partner/v1/events", data="{}", content_type="application/json")
    client.post(f"/webhooks/onfleet/{partner.slug}/", data=b"{}", content_type="application/json")

    lines = json_lines.lines
    assert len(lines) >= 6
    assert leaks(lines, [api_key, partner.webhook_secret]) == []
    assert any("[phone]" in line for line in lines)
    assert any("[email]" in line for line in lines)


def test_redaction_removes_sensitive_keys_and_scrubs_values_but_keeps_times_and_ids():
    event = {
        "event": "sent to +447700900123 and ann@example.org at 2026-11-30T14:05:06Z, message 123456",
        "headers": {"authorization": "Basic dXNlcjpwYXNz", "content-type": "application/json"},
        "webhook_secret": "s3cr3t",
        "note": "Authorization: Bearer abc.def.ghi token=xyz123",
        "path": "/t/Q2hhbmdlLW1lLXRva2Vu/",
        "count": 7,
    }

    out = redact(None, "info", dict(event))

    assert out["event"] == "sent to [phone] and [email] at 2026-11-30T14:05:06Z, message 123456"
    assert out["headers"] == {"authorization": REDACTED, "content-type": "application/json"}
    assert out["webhook_secret"] == REDACTED
    assert "abc.def.ghi" not in out["note"]
    assert "xyz123" not in out["note"]
    assert out["path"] == f"/t/{REDACTED}/"
    assert out["count"] == 7


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-30 14:05:06",
        "took 0.0123456789 s",
        "message 1234567",
        "uuid 3f2a9c1e0b7d4e5f8a6b1c2d3e4f5a6b",
    ],
)
def test_scrubbing_leaves_dates_durations_and_ids_alone(text):
    assert scrub(text) == text
