"""What one shipment can absorb: location trails thinned, and a ceiling on its events with a clear error."""

import json
from datetime import timedelta

import pytest
from django.db import connection

from partners import services
from partners.models import InboundMessage
from tests.clock import MORNING, at
from tracking.models import TrackingEvent

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS_URL = "/api/partner/v1/events"


@pytest.fixture
def ceiling(settings):
    def set_to(events: int) -> None:
        settings.BATON = {**settings.BATON, "MAX_EVENTS_PER_SHIPMENT": events}

    return set_to


def post(client, **event):
    body = {"reference": "SWIFT-77", "occurred_at": at(0), **event}
    return client.post(EVENTS_URL, data=json.dumps(body), content_type="application/json")


def position(second: float, **extra) -> dict:
    moment = (MORNING + timedelta(seconds=second)).isoformat()
    return {
        "kind": "location",
        "location": {"lat": 51.5, "lng": -0.1 + second / 1e4},
        "occurred_at": moment,
        **extra,
    }


def statuses(count: int, start: int = 0) -> list[dict]:
    steps = ("in_transit", "out_for_delivery")
    return [
        {"event_id": f"s{n}", "status": steps[n % 2], "occurred_at": at(n)}
        for n in range(start, start + count)
    ]


# --- thinning -------------------------------------------------------------------------------------------


def test_positions_of_one_source_are_kept_one_a_minute(custody, partner_client):
    client = partner_client(custody.partner)
    pings = [{"reference": "SWIFT-77", **position(s, event_id=f"p{s}")} for s in (0, 10, 20, 50, 60, 65, 130)]

    response = client.post(EVENTS_URL, data=json.dumps({"events": pings}), content_type="application/json")

    assert response.status_code == 202
    assert InboundMessage.objects.get().state == "processed"
    kept = TrackingEvent.objects.filter(kind="location").order_by("occurred_at")
    assert [e.event_id for e in kept] == ["p0", "p60", "p130"]


def test_a_position_carrying_an_eta_or_a_note_is_always_kept(custody, partner_client):
    client = partner_client(custody.partner)
    pings = [
        position(0),
        position(5, eta=(MORNING + timedelta(hours=1)).isoformat()),
        position(10, note="stuck behind a bin lorry"),
        position(15),
    ]

    client.post(
        EVENTS_URL,
        data=json.dumps({"events": [{"reference": "SWIFT-77", **p} for p in pings]}),
        content_type="application/json",
    )

    assert TrackingEvent.objects.filter(kind="location").count() == 3
    custody.shipment.refresh_from_db()
    assert custody.shipment.eta == MORNING + timedelta(hours=1)


def test_thinning_can_be_switched_off(custody, partner_client, settings):
    settings.BATON = {**settings.BATON, "POSITION_INTERVAL_SECONDS": 0}
    pings = [{"reference": "SWIFT-77", **position(s)} for s in (0, 10, 20)]

    partner_client(custody.partner).post(
        EVENTS_URL, data=json.dumps({"events": pings}), content_type="application/json"
    )

    assert TrackingEvent.objects.filter(kind="location").count() == 3


# --- the ceiling ------------------------------------------------------------------------------------------


def test_a_report_on_a_full_shipment_is_409_naming_the_reference(custody, partner_client, ceiling):
    ceiling(3)
    client = partner_client(custody.partner)
    batch = [{"reference": "SWIFT-77", **e} for e in statuses(3)]
    assert (
        client.post(
            EVENTS_URL, data=json.dumps({"events": batch}), content_type="application/json"
        ).status_code
        == 202
    )

    response = post(client, status="delivered", occurred_at=at(10))

    assert response.status_code == 409
    body = response.json()
    assert (body["error"], body["references"]) == ("shipment_full", ["SWIFT-77"])
    assert "holds 3 events" in body["message"]
    assert TrackingEvent.objects.count() == 3
    assert InboundMessage.objects.filter(state="rejected").count() == 1


def test_a_shipment_near_its_ceiling_is_checked_at_every_report(custody, partner_client, ceiling):
    ceiling(10)
    client = partner_client(custody.partner)
    for event in statuses(9):
        assert post(client, **event).status_code == 202  # nine checks; from the ninth, no longer cached

    tenth: list[str] = []
    with connection.execute_wrapper(lambda execute, sql, *args: tenth.append(sql) or execute(sql, *args)):
        assert post(client, status="delivered", occurred_at=at(30)).status_code == 202
    eleventh = post(client, status="delivered", occurred_at=at(31))

    assert any("COUNT(" in sql.upper() for sql in tenth)
    assert eleventh.status_code == 409
    assert TrackingEvent.objects.count() == 10


def test_reports_accepted_just_before_the_ceiling_end_failed_naming_it_and_replay_once_it_is_raised(
    custody, ceiling
):
    ceiling(4)
    waiting = [
        services.record_inbound(
            custody.partner,
            channel=InboundMessage.Channel.API,
            body=json.dumps(
                {"events": [{"reference": "SWIFT-77", **e} for e in statuses(3, start)]}
            ).encode(),
            headers={},
            enqueue=False,
        )
        for start in (0, 3)
    ]

    states = services.process_inbound_batch([m.pk for m in waiting])

    assert states == {waiting[0].pk: "processed", waiting[1].pk: "failed"}
    second = InboundMessage.objects.get(pk=waiting[1].pk)
    assert second.events_recorded == 1
    assert "2 event(s) not recorded" in second.error
    assert "ORD-1001 holds 4 events" in second.error
    assert TrackingEvent.objects.count() == 4

    ceiling(100)
    assert services.replay_messages(partner=custody.partner) == 1
    assert InboundMessage.objects.get(pk=waiting[1].pk).state == "processed"
    assert TrackingEvent.objects.count() == 6


def test_an_upload_past_the_ceiling_has_its_extra_rows_refused_by_line(custody, partner_client, ceiling):
    ceiling(30)
    rows = "".join(f"SWIFT-77,{e['status']},{e['occurred_at']},,{e['event_id']}\n" for e in statuses(50))
    text = "reference,status,occurred_at,reason,event_id\n" + rows

    response = partner_client(custody.partner).post(
        "/api/partner/v1/uploads", data=text, content_type="text/csv"
    )

    report = response.json()
    assert (report["rows"], report["accepted"], report["refused"]) == (50, 30, 20)
    assert report["errors"][0]["row"] == 32  # the 31st row, the header being line 1
    assert "holds 30 events" in report["errors"][0]["message"]
    assert InboundMessage.objects.get().state == "processed"
    assert TrackingEvent.objects.count() == 30
