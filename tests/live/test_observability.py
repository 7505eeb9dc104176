"""Operations on the production stack: metrics move with real work, a request id reaches the worker's log."""

import json
import os

import pytest
import requests

from hub.celery import app as celery_app
from partners.models import InboundMessage
from tests.conftest import Worker, wait_for
from tests.hub.metrics_helpers import TOKEN, sample
from tests.log_scan import leaks
from tests.partners.samples import body_of, create_partner, hold_jobs, samples, sign

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

WORKER_METRICS_PORT = 8117  # 8100 + the issue number: no other engineer's worker listens there


@pytest.fixture(scope="module")
def observed_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real worker with its metrics exporter (prefork pool, multiprocess mode) and JSON logs of its own."""
    directory = tmp_path_factory.mktemp("worker-metrics")
    log_path = str(tmp_path_factory.mktemp("worker-log") / "worker.log")
    worker = Worker(
        env={
            "PROMETHEUS_MULTIPROC_DIR": str(directory),
            "BATON_WORKER_METRICS_PORT": str(WORKER_METRICS_PORT),
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
        },
        log_path=log_path,
    )
    default_queue = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = worker.queue
    worker.start()
    yield worker
    worker.stop()
    celery_app.conf.task_default_queue = default_queue


def scrape_web(live_server) -> str:
    response = requests.get(
        f"{live_server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert response.status_code == 200
    return response.text


def scrape_worker() -> str:
    return requests.get(f"http://127.0.0.1:{WORKER_METRICS_PORT}/metrics", timeout=10).text


def worker_lines(worker: Worker) -> list[str]:
    with open(worker.log_path, encoding="utf-8", errors="replace") as handle:
        return handle.read().splitlines()


def test_a_webhook_is_followed_by_metrics_and_its_request_id_to_the_worker(
    observed_worker, live_server, settings
):
    settings.METRICS_TOKEN = TOKEN
    partner = create_partner("onfleet")
    hold_jobs(partner, "onfleet")
    entry = samples("onfleet")[0]
    body = body_of("onfleet", entry["file"])
    web_before, worker_before = scrape_web(live_server), scrape_worker()

    response = requests.post(
        f"{live_server.url}/webhooks/onfleet/{partner.slug}/",
        data=body,
        headers={**sign("onfleet", body), "X-Request-ID": "rid-live-webhook-17"},
        timeout=10,
    )

    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "rid-live-webhook-17"
    message_id = response.json()["message_id"]
    accepted = {"adapter": "onfleet", "channel": "webhook"}
    web_after = scrape_web(live_server)
    assert sample(web_after, "baton_partner_messages_accepted_total", **accepted) == (
        sample(web_before, "baton_partner_messages_accepted_total", **accepted) + 1
    )
    processed = wait_for(
        lambda: InboundMessage.objects.filter(pk=message_id, state=InboundMessage.State.PROCESSED).exists()
    )
    assert processed
    # The worker's counters: the message finished, its lag observed, the task timed.
    worker_after = wait_for(
        lambda: (
            (text := scrape_worker())
            and sample(text, "baton_acceptance_to_timeline_lag_seconds_count", outcome="processed")
            > sample(worker_before, "baton_acceptance_to_timeline_lag_seconds_count", outcome="processed")
            and text
        )
    )
    assert worker_after, "the worker's exporter never showed the processed message"
    finished = {"outcome": "processed", "channel": "webhook"}
    assert sample(worker_after, "baton_partner_messages_finished_total", **finished) == (
        sample(worker_before, "baton_partner_messages_finished_total", **finished) + 1
    )
    task = {"task": "partners.tasks.process_inbound_messages", "state": "SUCCESS"}
    assert sample(worker_after, "baton_celery_task_duration_seconds_count", **task) >= (
        sample(worker_before, "baton_celery_task_duration_seconds_count", **task) + 1
    )
    # The same request id on the worker's JSON line for this message.
    finished_lines = wait_for(
        lambda: [
            line
            for line in map(
                json.loads, filter(lambda raw: raw.startswith("{"), worker_lines(observed_worker))
            )
            if line.get("event") == "inbound message finished" and line.get("message_id") == message_id
        ]
    )
    assert finished_lines, "no worker log line for the message"
    assert finished_lines[0]["request_id"] == "rid-live-webhook-17"
    assert finished_lines[0]["state"] == "processed"
    # And nothing the worker logged carries a secret or a customer's contact details.
    assert leaks(worker_lines(observed_worker), [partner.webhook_secret, partner.api_key]) == []


def test_readiness_on_postgresql_and_redis_reports_both(observed_worker, live_server):
    response = requests.get(f"{live_server.url}/readyz", timeout=10)

    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks["database"]["ok"] is True
    assert checks["redis"]["ok"] is True


def test_worker_metrics_directory_holds_the_pool_processes_files(observed_worker):
    directory = observed_worker.env["PROMETHEUS_MULTIPROC_DIR"]

    # One file per pool process that counted something: the exporter sums them all.
    assert any(name.endswith(".db") for name in os.listdir(directory))
