"""Polling of pull-API partners (EasyPost, AfterShip) through partners/http.py; HTTP faked or on loopback."""

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from celery.exceptions import Retry
from django.conf import settings

from hub.celery import app as celery_app
from partners import http, services
from partners.adapters.base import PartnerError
from partners.models import InboundMessage
from tests.factories import CustodyFactory, PartnerFactory, ShipmentFactory
from tests.partners.samples import CUSTODY_SINCE, body_of
from tracking.models import TrackingEvent

pytestmark = pytest.mark.django_db(transaction=True)

EASYPOST_TRACKER = "trk_5c1e9a4f7b2d4e08a63f9d21c7b08e54"
AFTERSHIP_TRACKING = "m7xq2k9vbr3tlw8zd4nh1pcy"


def easypost_answer(sample: str = "04_tracker.updated_out_for_delivery.json") -> bytes:
    """GET /v2/trackers/<id> answers the Tracker object a webhook carries as `result`."""
    return json.dumps(json.loads(body_of("easypost", sample))["result"]).encode()


def aftership_answer(sample: str = "03_OutForDelivery.json") -> bytes:
    """GET /trackings/<id> wraps the tracking a webhook carries as `msg` in `data`."""
    return json.dumps(
        {"meta": {"code": 200}, "data": json.loads(body_of("aftership", sample))["msg"]}
    ).encode()


class FakeResponse:
    def __init__(self, status_code: int, content: bytes):
        self.status_code, self.content = status_code, content

    def json(self):
        return json.loads(self.content)


class FakeSession:
    """Stands in for requests.Session at the PartnerHttpClient(session=...) seam."""

    def __init__(self, *answers: tuple[int, bytes]):
        self.answers = list(answers)
        self.calls: list[tuple[str, dict, object]] = []

    def get(self, url, headers=None, timeout=None):
        self.calls.append((url, headers or {}, timeout))
        status, content = self.answers[min(len(self.calls), len(self.answers)) - 1]
        return FakeResponse(status, content)


def easypost_custody(**partner_fields):
    partner = PartnerFactory(
        slug="royal-mail-ep",
        adapter="easypost",
        kind="carrier",
        config={"api_key": "EZTK-test"},
        **partner_fields,
    )
    shipment = ShipmentFactory(reference="TT481503672GB")
    return CustodyFactory(
        partner=partner, shipment=shipment, partner_reference=EASYPOST_TRACKER, started_at=CUSTODY_SINCE
    )


def aftership_custody():
    partner = PartnerFactory(slug="dpd-as", adapter="aftership", kind="carrier", config={"api_key": "as-key"})
    shipment = ShipmentFactory(reference="OXF-SHOP-55821")
    return CustodyFactory(
        partner=partner, shipment=shipment, partner_reference=AFTERSHIP_TRACKING, started_at=CUSTODY_SINCE
    )


def timeline(shipment):
    return list(
        TrackingEvent.objects.filter(shipment=shipment).order_by("sequence").values_list("pk", "status")
    )


def test_poll_stores_the_raw_answer_and_puts_its_history_on_the_timeline():
    custody = easypost_custody()
    session = FakeSession((200, easypost_answer()))

    recorded = services.poll_custody(custody.pk, client=http.PartnerHttpClient(session=session))

    [(url, headers, timeout)] = session.calls
    assert url == f"https://api.easypost.com/v2/trackers/{EASYPOST_TRACKER}"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"EZTK-test:").decode()
    assert timeout == (http.CONNECT_TIMEOUT, http.READ_TIMEOUT)
    message = InboundMessage.objects.get()
    assert (message.channel, message.state) == (InboundMessage.Channel.POLL, InboundMessage.State.PROCESSED)
    assert bytes(message.body) == easypost_answer()
    assert recorded == message.events_recorded > 0
    statuses = [s for _, s in timeline(custody.shipment) if s]
    assert statuses == ["info_received", "in_transit", "in_transit", "out_for_delivery"]
    custody.shipment.refresh_from_db()
    assert custody.shipment.status == "out_for_delivery"


def test_polling_the_same_snapshot_again_adds_nothing():
    custody = easypost_custody()
    services.poll_custody(
        custody.pk, client=http.PartnerHttpClient(session=FakeSession((200, easypost_answer())))
    )
    before = timeline(custody.shipment)

    services.poll_custody(
        custody.pk, client=http.PartnerHttpClient(session=FakeSession((200, easypost_answer())))
    )

    assert timeline(custody.shipment) == before
    assert InboundMessage.objects.filter(channel=InboundMessage.Channel.POLL).count() == 2


def test_aftership_poll_lands_on_the_same_timeline_as_its_webhooks():
    custody = aftership_custody()
    session = FakeSession((200, aftership_answer()))

    services.poll_custody(custody.pk, client=http.PartnerHttpClient(session=session))

    assert session.calls[0][0] == f"https://api.aftership.com/tracking/2025-01/trackings/{AFTERSHIP_TRACKING}"
    assert session.calls[0][1]["as-api-key"] == "as-key"
    custody.shipment.refresh_from_db()
    assert custody.shipment.status == "out_for_delivery"
    assert {e.message.channel for e in TrackingEvent.objects.select_related("message")} == {"poll"}


def test_poll_partners_polls_open_jobs_of_pull_partners_only(monkeypatch):
    easypost = easypost_custody()
    aftership = aftership_custody()
    done = CustodyFactory(partner=aftership.partner, partner_reference="DONE-1", shipment__status="delivered")
    CustodyFactory(
        partner=PartnerFactory(adapter="onfleet"), partner_reference="ONF-1"
    )  # pushes, never polled
    answers = {EASYPOST_TRACKER: easypost_answer(), AFTERSHIP_TRACKING: aftership_answer()}
    asked: list[str] = []

    class ByReference(FakeSession):
        def get(self, url, headers=None, timeout=None):
            asked.append(url.rsplit("/", 1)[-1])
            return FakeResponse(200, answers[asked[-1]])

    monkeypatch.setattr(http, "make_session", ByReference)

    polled = services.poll_pull_partners()  # the eager Celery task polls each job

    assert polled == 2
    assert sorted(asked) == sorted(answers)
    for custody in (easypost, aftership):
        custody.shipment.refresh_from_db()
        assert custody.shipment.status == "out_for_delivery"
    assert not TrackingEvent.objects.filter(shipment=done.shipment).exists()


def test_a_permanent_404_is_not_retried(monkeypatch):
    custody = easypost_custody()
    session = FakeSession((404, b'{"error": {"code": "NOT_FOUND"}}'))
    monkeypatch.setattr(http, "make_session", lambda: session)

    celery_app.tasks["partners.tasks.poll_custody"].delay(custody.pk)

    assert len(session.calls) == 1
    assert TrackingEvent.objects.count() == 0


def test_a_transient_error_is_retried_by_the_task(monkeypatch):
    custody = easypost_custody()
    session = FakeSession((503, b"busy"))
    monkeypatch.setattr(http, "make_session", lambda: session)

    with pytest.raises(Retry):  # eager mode surfaces the scheduled retry instead of waiting for it
        celery_app.tasks["partners.tasks.poll_custody"].delay(custody.pk)

    assert len(session.calls) == 1
    assert TrackingEvent.objects.count() == 0


def test_beat_schedule_runs_poll_partners(monkeypatch):
    [entry] = [
        e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "partners.tasks.poll_partners"
    ]
    custody = easypost_custody()
    monkeypatch.setattr(http, "make_session", lambda: FakeSession((200, easypost_answer())))

    assert entry["schedule"].total_seconds() > 0
    assert celery_app.tasks[entry["task"]].delay().get() == 1
    custody.shipment.refresh_from_db()
    assert custody.shipment.status == "out_for_delivery"


# --- the HTTP module's own backoff, on a loopback server ------------------------------------------------


def test_make_session_retries_rate_limits_and_server_errors_with_retry_after():
    retry = http.make_session().get_adapter("https://api.easypost.com").max_retries

    assert retry.total >= 3
    assert {429, 500, 502, 503, 504} <= set(retry.status_forcelist)
    assert retry.respect_retry_after_header
    assert retry.allowed_methods == frozenset({"GET", "HEAD"})  # never repeat a write
    assert retry.backoff_factor > 0
    assert retry.raise_on_status is False


@pytest.fixture
def vendor_server():
    """A loopback HTTP server answering from a script of (status, headers, body)."""
    script: list[tuple[int, dict, bytes]] = []
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            status, headers, body = script.pop(0)
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", script, seen
    server.shutdown()
    server.server_close()


def test_429_with_retry_after_is_waited_out_and_retried(vendor_server, monkeypatch):
    base, script, seen = vendor_server
    script += [
        (429, {"Retry-After": "7"}, b"slow down"),
        (200, {"Content-Type": "application/json"}, b'{"ok": 1}'),
    ]
    waits: list[float] = []
    monkeypatch.setattr("urllib3.util.retry.time.sleep", waits.append)  # no real sleeping

    answer = http.PartnerHttpClient().get_json(f"{base}/trackers/trk_1")

    assert answer == {"ok": 1}
    assert seen == ["/trackers/trk_1", "/trackers/trk_1"]
    assert waits == [7.0]


def test_404_is_permanent_and_asked_once(vendor_server, monkeypatch):
    base, script, seen = vendor_server
    script += [(404, {}, b"{}"), (200, {}, b"{}")]
    monkeypatch.setattr("urllib3.util.retry.time.sleep", lambda seconds: None)

    with pytest.raises(PartnerError) as caught:
        http.PartnerHttpClient().get_json(f"{base}/trackers/trk_gone")

    assert caught.value.permanent
    assert seen == ["/trackers/trk_gone"]
