"""Merchant webhooks against a real HTTP receiver on 127.0.0.1 (with the development allowance)."""

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from contactcentre.models import Case
from contactcentre.services import open_case
from partners.services import assign_shipment
from tests.factories import PartnerFactory, ShipmentFactory
from tracking import outbox, webhooks
from tracking.models import DeliveryAttempt, Merchant, OutboundMessage, WebhookEndpoint, new_webhook_secret

pytestmark = pytest.mark.django_db(transaction=True)


class Receiver:
    """An HTTP server that answers with the scripted status codes (then 200) and records every request."""

    def __init__(self, statuses=(), answer=b"", hang=None):
        self.statuses = list(statuses)
        self.answer = answer
        self.hang = hang  # an Event: after the answer's start, keep the connection open until it is set
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body.decode()})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()
                try:
                    self.wfile.write(receiver.answer or (b"thanks" if status < 300 else b"busy"))
                    self.wfile.flush()
                    if receiver.hang is not None:
                        receiver.hang.wait(timeout=30)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # Baton read what it wanted and hung up

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/baton"

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def payloads(self):
        return [json.loads(r["body"]) for r in self.requests]


@pytest.fixture
def allow_loopback(settings):
    settings.BATON = {**settings.BATON, "ALLOW_PRIVATE_URLS": True}


@pytest.fixture
def receiver(allow_loopback):
    made = []

    def make(statuses=(), answer=b"", hang=None):
        made.append(Receiver(statuses, answer, hang))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def acme():
    return Merchant.objects.create(slug="acme", name="Acme Homewares")


def post_status(partner, reference, status, minutes_ago):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {partner.api_key}")
    response = client.post(
        "/api/partner/v1/events",
        {
            "reference": reference,
            "status": status,
            "occurred_at": (timezone.now() - timedelta(minutes=minutes_ago)).isoformat(),
        },
        format="json",
    )
    assert response.status_code in (200, 201, 202), response.content


def verify(endpoint_secret, request):
    return Webhook(endpoint_secret).verify(request["body"], request["headers"])


def test_status_changes_are_posted_signed_and_verify_with_standardwebhooks(receiver, acme):
    hook = receiver()
    endpoint = webhooks.register_endpoint(acme, url=hook.url, event_types=["shipment.status_changed"])
    partner = PartnerFactory(slug="swift")
    shipment = ShipmentFactory(reference="ORD-1", merchant="acme")
    assign_shipment(
        shipment, partner=partner, partner_reference="SW-1", started_at=timezone.now() - timedelta(hours=1)
    )

    post_status(partner, "SW-1", "picked_up", 30)

    assert len(hook.requests) == 1
    request = hook.requests[0]
    payload = verify(endpoint.secret, request)
    assert payload["type"] == "shipment.status_changed"
    assert payload["data"]["shipment"]["reference"] == "ORD-1"
    assert payload["data"]["shipment"]["status"] == "picked_up"
    assert payload["data"]["shipment"]["custodian"] == "swift"
    assert payload["data"]["previous"]["status"] == "pending"
    assert "customer_email" not in json.dumps(payload)
    assert request["headers"]["webhook-id"].startswith("msg_")
    with pytest.raises(WebhookVerificationError):
        Webhook(new_webhook_secret()).verify(request["body"], request["headers"])


def test_other_merchants_and_unsubscribed_event_types_get_nothing(receiver, acme):
    hook = receiver()
    webhooks.register_endpoint(acme, url=hook.url, event_types=["case.opened"])
    other = Merchant.objects.create(slug="other", name="Other")
    webhooks.register_endpoint(other, url=hook.url)
    partner = PartnerFactory(slug="swift")
    shipment = ShipmentFactory(reference="ORD-2", merchant="acme")
    assign_shipment(shipment, partner=partner, partner_reference="SW-2")
    post_status(partner, "SW-2", "picked_up", 5)

    assert hook.requests == []
    assert not OutboundMessage.objects.filter(transport="merchant_webhook").exists()


def test_a_receiver_that_fails_twice_then_succeeds_gets_the_message_exactly_once_more(receiver, acme):
    hook = receiver(statuses=[500, 503])
    endpoint = webhooks.register_endpoint(acme, url=hook.url, event_types=["custody.changed"])
    shipment = ShipmentFactory(reference="ORD-3", merchant="acme")
    assign_shipment(shipment, partner=PartnerFactory(slug="swift"), partner_reference="SW-3")

    message = OutboundMessage.objects.get(transport="merchant_webhook")
    for _ in range(2):
        message.refresh_from_db()
        assert message.state == OutboundMessage.State.RETRYING
        outbox.send_message(message.pk, now=message.next_attempt_at + timedelta(seconds=1))
    message.refresh_from_db()
    assert message.state == OutboundMessage.State.SENT
    # Nothing more is due: a sweep or a duplicate task sends nothing.
    assert outbox.sweep_outbox(now=timezone.now() + timedelta(days=4)) == 0
    assert outbox.send_message(message.pk, now=timezone.now() + timedelta(days=4)) == "skipped"

    assert len(hook.requests) == 3
    ids = {r["headers"]["webhook-id"] for r in hook.requests}
    assert ids == {message.payload["webhook_id"]}  # the same id on every attempt: receivers deduplicate
    for request in hook.requests:
        assert verify(endpoint.secret, request)["type"] == "custody.changed"
    attempts = list(DeliveryAttempt.objects.filter(message=message))
    assert [(a.succeeded, a.status_code) for a in attempts] == [(False, 500), (False, 503), (True, 200)]
    assert attempts[0].response_excerpt == "busy"


def test_events_of_a_shipment_are_numbered_in_order(receiver, acme):
    hook = receiver()
    webhooks.register_endpoint(acme, url=hook.url, event_types=["shipment.status_changed", "custody.changed"])
    partner = PartnerFactory(slug="swift")
    shipment = ShipmentFactory(reference="ORD-4", merchant="acme")
    assign_shipment(
        shipment, partner=partner, partner_reference="SW-4", started_at=timezone.now() - timedelta(hours=2)
    )
    for minutes, status in [(90, "picked_up"), (60, "out_for_delivery"), (10, "delivered")]:
        post_status(partner, "SW-4", status, minutes)

    payloads = hook.payloads()
    assert [p["type"] for p in payloads] == [
        "custody.changed",
        "shipment.status_changed",
        "shipment.status_changed",
        "shipment.status_changed",
    ]
    assert [p["data"]["sequence"] for p in payloads] == [1, 2, 3, 4]
    assert [p["data"]["shipment"]["status"] for p in payloads[1:]] == [
        "picked_up",
        "out_for_delivery",
        "delivered",
    ]


def test_case_opened_is_sent_to_the_merchant(receiver, acme):
    hook = receiver()
    endpoint = webhooks.register_endpoint(acme, url=hook.url, event_types=["case.opened"])
    shipment = ShipmentFactory(reference="ORD-5", merchant="acme")
    case = open_case(shipment, channel=Case.Channel.PHONE, reason=Case.Reason.WHERE_IS_MY_ORDER)

    payload = verify(endpoint.secret, hook.requests[0])
    assert payload["type"] == "case.opened"
    assert payload["data"]["case"]["id"] == case.pk
    assert payload["data"]["case"]["reason"] == "where_is_my_order"
    assert payload["data"]["sequence"] == 1


def test_during_a_rotation_both_secrets_verify_and_after_it_only_the_new_one(receiver, acme):
    hook = receiver()
    endpoint = webhooks.register_endpoint(acme, url=hook.url, event_types=["case.opened"])
    old_secret = endpoint.secret
    webhooks.rotate_secret(endpoint, overlap=timedelta(hours=1))
    shipment = ShipmentFactory(reference="ORD-6", merchant="acme")
    open_case(shipment, channel=Case.Channel.PHONE, reason=Case.Reason.LATE)

    request = hook.requests[0]
    assert len(request["headers"]["webhook-signature"].split(" ")) == 2
    assert verify(old_secret, request)
    assert verify(endpoint.secret, request)

    endpoint.refresh_from_db()
    later = timezone.now() + timedelta(hours=2)
    headers = webhooks.sign(endpoint, "msg_x", "{}", now=later)
    assert len(headers["webhook-signature"].split(" ")) == 1


def test_persistent_failure_disables_the_endpoint_and_tells_operations(receiver, acme, settings):
    settings.OPERATIONS_EMAIL = "ops@example.com"
    hook = receiver(statuses=[500] * 100)
    endpoint = webhooks.register_endpoint(acme, url=hook.url, event_types=["case.opened"])
    shipment = ShipmentFactory(reference="ORD-7", merchant="acme")
    open_case(shipment, channel=Case.Channel.PHONE, reason=Case.Reason.LATE)
    message = OutboundMessage.objects.get(transport="merchant_webhook")

    # Past the outbox's give-up age, the next failure is final.
    outbox.send_message(message.pk, now=message.created_at + timedelta(days=3, seconds=1))

    message.refresh_from_db()
    endpoint.refresh_from_db()
    assert message.state == OutboundMessage.State.FAILED
    assert not endpoint.is_active
    assert "failed for good" in endpoint.disabled_reason
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ops@example.com"]
    assert hook.url in mail.outbox[0].body

    # Re-enabled and replayed: the same message (same webhook-id) goes out again.
    hook.statuses.clear()
    webhooks.enable_endpoint(endpoint)
    start = (timezone.now() - timedelta(hours=1)).isoformat()
    end = (timezone.now() + timedelta(hours=1)).isoformat()
    call_command("replay_webhooks", "--from", start, "--to", end, "--endpoint", str(endpoint.pk), "--failed")
    message.refresh_from_db()
    assert message.state == OutboundMessage.State.SENT
    assert hook.requests[-1]["headers"]["webhook-id"] == message.payload["webhook_id"]


def test_a_private_address_is_refused_at_registration_and_at_send_time(acme, settings):
    with pytest.raises(webhooks.InvalidEndpoint) as refused:
        webhooks.register_endpoint(acme, url="http://127.0.0.1:9/hook")
    assert "url" in refused.value.fields
    with pytest.raises(webhooks.InvalidEndpoint):
        webhooks.register_endpoint(acme, url="http://169.254.169.254/latest/meta-data")

    # Registered while allowed (or DNS changed since): the send is refused for good, never attempted.
    endpoint = WebhookEndpoint.objects.create(merchant=acme, url="http://127.0.0.1:9/hook")
    shipment = ShipmentFactory(reference="ORD-8", merchant="acme")
    open_case(shipment, channel=Case.Channel.PHONE, reason=Case.Reason.LATE)
    message = OutboundMessage.objects.get(transport="merchant_webhook", payload__endpoint=endpoint.pk)
    assert message.state == OutboundMessage.State.FAILED
    assert "private" in message.last_error


def test_the_request_goes_to_the_checked_address_not_a_fresh_lookup(receiver, monkeypatch):
    """DNS rebinding: whatever the name resolves to later, Baton connects to the address it checked."""
    hook = receiver()
    port = hook.server.server_address[1]
    from tracking import transports

    monkeypatch.setattr(transports, "check_public_url", lambda url: ["127.0.0.1"])
    # `.invalid` never resolves (RFC 2606): reaching the receiver proves no second lookup happened.
    sent = transports.post_json(f"http://hooks.invalid:{port}/x", b"{}", {"webhook-id": "msg_1"})
    assert sent.status_code == 200
    assert hook.requests[0]["headers"]["Host"] == f"hooks.invalid:{port}"


def test_redirects_are_not_followed(receiver):
    hook = receiver(statuses=[302])
    from tracking import transports

    with pytest.raises(outbox.SendError) as failed:
        transports.post_json(hook.url, b"{}", {})
    assert failed.value.status_code == 302
    assert len(hook.requests) == 1


def test_operations_register_endpoints_through_the_api(operations_client, agent_client, acme, allow_loopback):
    url = "/api/v1/merchants/acme/webhooks"
    body = {"url": "http://127.0.0.1:8116/hook", "event_types": ["shipment.flagged"]}
    assert agent_client.post(url, body, format="json").status_code == 403
    created = operations_client.post(url, body, format="json")
    assert created.status_code == 201
    assert created.json()["secret"].startswith("whsec_")
    listed = operations_client.get(url).json()
    assert [e["event_types"] for e in listed["results"]] == [["shipment.flagged"]]
    assert "secret" not in listed["results"][0]
    bad = operations_client.post(url, {"url": "http://127.0.0.1/x", "event_types": ["nope"]}, format="json")
    assert bad.status_code == 400
    assert "event_types[0]" in bad.json()["fields"]
    rotated = operations_client.post(
        f"/api/v1/webhooks/{created.json()['id']}/rotate-secret", {}, format="json"
    )
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != created.json()["secret"]
    assert operations_client.get("/api/v1/merchants/nobody/webhooks").status_code == 404


def test_the_api_refuses_a_private_url_without_the_allowance(operations_client, acme):
    response = operations_client.post(
        "/api/v1/merchants/acme/webhooks", {"url": "http://10.0.0.5/hook"}, format="json"
    )
    assert response.status_code == 400
    assert "url" in response.json()["fields"]


def test_a_shipment_is_created_for_a_known_merchant_only(agent_client, acme):
    body = {
        "reference": "M-1",
        "merchant": "acme",
        "customer_name": "A",
        "address": "1 Road",
        "postcode": "N1 1AA",
    }
    assert agent_client.post("/api/v1/shipments", body, format="json").status_code == 201
    body = {**body, "reference": "M-2", "merchant": "ghost"}
    response = agent_client.post("/api/v1/shipments", body, format="json")
    assert response.status_code == 400
    assert "merchant" in response.json()["fields"]


def test_each_kind_of_change_names_its_event_type():
    from datetime import UTC, datetime

    from tracking.changes import ShipmentChange, Snapshot

    eta = datetime(2026, 1, 1, 12, tzinfo=UTC)
    before = Snapshot(status="in_transit", reason="", eta=eta, custody_id=1, flags=frozenset({"conflict"}))
    after = Snapshot(
        status="attempt_failed",
        reason="recipient_not_home",
        eta=eta + timedelta(hours=1),
        custody_id=2,
        flags=frozenset({"stale_custodian"}),
    )
    events = dict(webhooks.change_events(ShipmentChange(before=before, after=after)))
    assert events == {
        "shipment.status_changed": {"status": "in_transit", "reason": ""},
        "shipment.eta_changed": {"eta": eta.isoformat()},
        "custody.changed": {"custody_id": 1},
        "shipment.flagged": {"raised": ["stale_custodian"]},
    }
    cleared_only = ShipmentChange(before=after, after=Snapshot(**{**after.__dict__, "flags": frozenset()}))
    assert webhooks.change_events(cleared_only) == []


def test_case_resolved_is_sent_to_the_merchant(receiver, acme, django_user_model):
    from contactcentre.services import resolve_case

    hook = receiver()
    endpoint = webhooks.register_endpoint(acme, url=hook.url, event_types=["case.resolved"])
    shipment = ShipmentFactory(reference="ORD-9", merchant="acme")
    case = open_case(shipment, channel=Case.Channel.PHONE, reason=Case.Reason.LATE)
    agent = django_user_model.objects.create_user("agent9", password="pw")
    resolve_case(case, resolution=Case.Resolution.INFORMED, by=agent)

    assert len(hook.requests) == 1
    payload = verify(endpoint.secret, hook.requests[0])
    assert payload["type"] == "case.resolved"
    assert payload["data"]["case"]["resolution"] == "informed"
    assert payload["data"]["case"]["resolved_at"]


def test_one_message_is_replayed_with_its_webhook_id_and_every_attempt_logged(receiver, acme):
    hook = receiver()
    webhooks.register_endpoint(acme, url=hook.url, event_types=["case.opened"])
    open_case(
        ShipmentFactory(reference="ORD-10", merchant="acme"),
        channel=Case.Channel.PHONE,
        reason=Case.Reason.LATE,
    )
    message = OutboundMessage.objects.get(transport="merchant_webhook")

    call_command("replay_webhooks", "--message", str(message.pk))

    assert len(hook.requests) == 2
    assert {r["headers"]["webhook-id"] for r in hook.requests} == {message.payload["webhook_id"]}
    assert list(message.delivery_attempts.values_list("succeeded", "status_code")) == [(True, 200)] * 2
    with pytest.raises(CommandError, match="No merchant webhook message"):
        call_command("replay_webhooks", "--message", str(message.pk + 1000))
    with pytest.raises(CommandError, match="from < to"):
        call_command(
            "replay_webhooks", "--from", "2026-01-02T00:00:00+00:00", "--to", "2026-01-01T00:00:00+00:00"
        )


def test_only_the_start_of_a_receivers_answer_is_read_and_logged(receiver):
    from tracking import transports

    hook = receiver(answer=b"x" * 5_000_000)
    sent = transports.post_json(hook.url, b"{}", {})
    assert sent.status_code == 200
    assert sent.response == "x" * transports.EXCERPT_CHARACTERS

    # An answer that never ends is not waited for: what has arrived is the excerpt.
    endless = threading.Event()
    hook = receiver(answer=b"accepted, more to come", hang=endless)
    try:
        started = time.monotonic()
        sent = transports.post_json(hook.url, b"{}", {}, timeout=20)
        assert time.monotonic() - started < 10
        assert sent.response == "accepted, more to come"
    finally:
        endless.set()
