"""/metrics: guarded, per route, and moving with the work: accepted, processed, waiting, failed, flagged."""

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from hub import collectors
from partners.models import InboundMessage
from tests.factories import PartnerFactory, ShipmentFactory
from tests.hub.metrics_helpers import TOKEN, sample
from tests.partners.samples import body_of, create_partner, post_webhook, samples
from tracking.models import OutboundMessage

pytestmark = pytest.mark.django_db


@pytest.fixture
def scrape(client, settings):
    settings.METRICS_TOKEN = TOKEN

    def get() -> str:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain")
        return response.content.decode()

    return get


def post_event(client, partner, reference="SWIFT-77", status="out_for_delivery"):
    body = {
        "reference": reference,
        "event_id": f"e-{status}",
        "status": status,
        "occurred_at": timezone.now().isoformat(),
    }
    return client.post("/api/partner/v1/events", data=json.dumps(body), content_type="application/json")


def test_metrics_need_the_bearer_token(client, settings):
    settings.METRICS_TOKEN = TOKEN

    missing = client.get("/metrics")
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    right = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert missing.json()["error"] == "not_authenticated"
    assert missing["WWW-Authenticate"].startswith("Bearer")


def test_metrics_are_refused_when_nothing_is_configured(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = []

    response = client.get("/metrics")

    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"


def test_metrics_are_open_to_an_allow_listed_network_only(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["10.20.0.0/16"]

    inside = client.get("/metrics", REMOTE_ADDR="10.20.3.4")
    outside = client.get("/metrics", REMOTE_ADDR="10.21.3.4")

    assert (inside.status_code, outside.status_code) == (200, 403)


def test_requests_are_counted_per_route_name_never_per_path(client, scrape):
    shipment = ShipmentFactory()
    labels = {"route": "tracking-page", "method": "GET"}
    before = scrape()

    assert client.get(f"/t/{shipment.token}").status_code == 200
    after = scrape()

    count = "baton_http_requests_total"
    assert sample(after, count, status="200", **labels) == sample(before, count, status="200", **labels) + 1
    timed = "baton_http_request_duration_seconds_count"
    assert sample(after, timed, **labels) == sample(before, timed, **labels) + 1
    assert shipment.token not in after


@pytest.mark.django_db(transaction=True)
def test_an_accepted_and_processed_message_moves_the_ingest_metrics(custody, partner_client, scrape):
    before = scrape()

    assert post_event(partner_client(custody.partner), custody.partner).status_code == 202
    after = scrape()

    labels = {"adapter": "native", "channel": "api"}
    accepted = "baton_partner_messages_accepted_total"
    assert sample(after, accepted, **labels) == sample(before, accepted, **labels) + 1
    finished = "baton_partner_messages_finished_total"
    assert sample(after, finished, outcome="processed", channel="api") == (
        sample(before, finished, outcome="processed", channel="api") + 1
    )
    lag = "baton_acceptance_to_timeline_lag_seconds_count"
    assert sample(after, lag, outcome="processed") == sample(before, lag, outcome="processed") + 1
    task = "baton_celery_task_duration_seconds_count"
    task_labels = {"task": "partners.tasks.process_inbound_messages", "state": "SUCCESS"}
    assert sample(after, task, **task_labels) == sample(before, task, **task_labels) + 1


@pytest.mark.django_db(transaction=True)
def test_unmatched_message_is_counted_as_such(client, scrape):
    partner = create_partner("onfleet")  # holds no job: its webhook matches nothing
    entry = samples("onfleet")[0]
    before = scrape()

    assert (
        post_webhook(client, partner, body_of("onfleet", entry["file"]), entry["headers"]).status_code == 200
    )
    after = scrape()

    finished = "baton_partner_messages_finished_total"
    labels = {"outcome": "unmatched", "channel": "webhook"}
    accepted = "baton_partner_messages_accepted_total"
    assert sample(after, accepted, adapter="onfleet", channel="webhook") == (
        sample(before, accepted, adapter="onfleet", channel="webhook") + 1
    )
    assert sample(after, finished, **labels) == sample(before, finished, **labels) + 1
    assert sample(after, "baton_inbound_unresolved_messages", state="unmatched") == 1
    assert sample(after, "baton_inbound_unresolved_messages", state="failed") == 0


def test_backlog_counts_waiting_messages_and_the_age_of_the_oldest(partner, scrape):
    now = timezone.now()
    for age in (90, 30):
        InboundMessage.objects.create(
            partner=partner,
            channel="api",
            body=b"{}",
            content_hash="x",
            received_at=now - timedelta(seconds=age),
        )
    InboundMessage.objects.create(
        partner=partner,
        channel="api",
        body=b"{}",
        content_hash="y",
        received_at=now - timedelta(hours=2),
        state=InboundMessage.State.PROCESSED,
        processed_at=now,
    )

    exposition = scrape()

    assert sample(exposition, "baton_inbound_backlog_messages") == 2
    assert 90 <= sample(exposition, "baton_inbound_oldest_waiting_age_seconds") < 120


def test_an_empty_backlog_reports_zero_age(scrape):
    exposition = scrape()

    assert sample(exposition, "baton_inbound_backlog_messages") == 0
    assert sample(exposition, "baton_inbound_oldest_waiting_age_seconds") == 0


def test_flags_are_counted_by_type_on_open_shipments(scrape):
    ShipmentFactory(flags=["conflict", "stale_custodian"])
    ShipmentFactory(flags=["conflict"])
    ShipmentFactory(flags=["conflict"], status="delivered")
    ShipmentFactory()

    exposition = scrape()

    assert sample(exposition, "baton_shipment_flags", flag="conflict") == 2
    assert sample(exposition, "baton_shipment_flags", flag="stale_custodian") == 1


def test_outbound_deliveries_are_counted_by_transport_and_state(scrape):
    for transport, state in [("email", "sent"), ("email", "sent"), ("sms", "failed"), ("sms", "retrying")]:
        OutboundMessage.objects.create(
            transport=transport, purpose="customer.test", recipient="r", state=state
        )

    exposition = scrape()

    name = "baton_outbound_messages"
    assert sample(exposition, name, transport="email", state="sent") == 2
    assert sample(exposition, name, transport="sms", state="failed") == 1
    assert sample(exposition, name, transport="sms", state="retrying") == 1


def test_outbox_collector_reports_nothing_without_an_outbox_model(monkeypatch):
    monkeypatch.setattr(collectors.OutboundDeliveriesCollector, "model_label", ("tracking", "NoSuchModel"))

    assert list(collectors.OutboundDeliveriesCollector().collect()) == []


def test_scrape_cost_is_a_few_queries(scrape, django_assert_max_num_queries):
    PartnerFactory()
    ShipmentFactory(flags=["conflict"])

    with django_assert_max_num_queries(5):
        scrape()


def test_in_multiprocess_mode_a_scrape_sums_the_files_of_every_process(tmp_path):
    """gunicorn -w N: each process writes to PROMETHEUS_MULTIPROC_DIR; /metrics reads them all."""
    script = (
        "import django; django.setup(); from django.test import Client; from hub import collectors; "
        "collectors.DATABASE_COLLECTORS = (); c = Client(); c.get('/console/'); "
        f"print(c.get('/metrics', HTTP_AUTHORIZATION='Bearer {TOKEN}').content.decode())"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env |= {
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "METRICS_TOKEN": TOKEN,
        "DJANGO_SETTINGS_MODULE": "hub.settings",
    }
    run = [sys.executable, "-c", script]

    first = subprocess.run(run, env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, check=True)
    second = subprocess.run(run, env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, check=True)

    labels = {"route": "contactcentre:console", "method": "GET", "status": "302"}
    assert sample(first.stdout, "baton_http_requests_total", **labels) == 1
    assert sample(second.stdout, "baton_http_requests_total", **labels) == 2  # both processes' requests
    assert len(list(tmp_path.glob("*.db"))) >= 2
