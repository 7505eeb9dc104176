"""CSV upload for small contractors: the template, a per-row error report, re-uploads that change nothing."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from partners.models import InboundMessage
from tests.clock import at
from tests.factories import CustodyFactory
from tracking.models import TrackingEvent

pytestmark = pytest.mark.django_db(transaction=True)

UPLOAD_URL = "/api/partner/v1/uploads"
TEMPLATE_URL = "/api/partner/v1/uploads/template.csv"
# The columns docs/partners.md documents, in order.
DOCUMENTED_COLUMNS = [
    "reference",
    "status",
    "occurred_at",
    "reason",
    "event_id",
    "raw_status",
    "latitude",
    "longitude",
    "eta",
    "note",
]
DAY = (
    "reference,status,occurred_at,reason,event_id,raw_status,latitude,longitude,eta,note\n"
    f"SWIFT-77,picked_up,{at(0)},,,,,,,\n"
    f"SWIFT-77,out_for_delivery,{at(60)},,,Van 3 left depot,51.5,-0.12,,\n"
    f"SWIFT-77,teleported,{at(90)},,,,,,,\n"
    f"NOT-OURS,delivered,{at(120)},,,,,,,\n"
    "SWIFT-77,attempt_failed,half past ten,recipient_not_home,,,,,,\n"
)


def upload_text(client, text: str, content_type: str = "text/csv"):
    return client.post(UPLOAD_URL, data=text.encode(), content_type=content_type)


def events(shipment):
    return list(
        TrackingEvent.objects.filter(shipment=shipment)
        .order_by("pk")
        .values_list("pk", "status", "occurred_at")
    )


def test_upload_records_good_rows_and_reports_bad_ones_by_line_and_field(custody, partner_client):
    response = upload_text(partner_client(custody.partner), DAY)

    assert response.status_code == 200
    report = response.json()
    assert (report["rows"], report["accepted"]) == (5, 2)
    assert [(e["row"], sorted(e["fields"])) for e in report["errors"]] == [
        (4, ["status"]),
        (5, ["reference"]),
        (6, ["occurred_at"]),
    ]
    assert report["errors"][1]["message"] == "no shipment held by you under 'NOT-OURS'"
    custody.shipment.refresh_from_db()
    assert custody.shipment.status == "out_for_delivery"
    assert [status for _, status, _ in events(custody.shipment)] == ["picked_up", "out_for_delivery"]
    assert InboundMessage.objects.get().channel == InboundMessage.Channel.UPLOAD


def test_uploading_the_same_file_again_changes_nothing(custody, partner_client):
    client = partner_client(custody.partner)
    upload_text(client, DAY)
    first = events(custody.shipment)
    custody.shipment.refresh_from_db()
    state = (custody.shipment.status, custody.shipment.status_at, custody.shipment.last_event_at)

    again = upload_text(client, DAY)

    assert again.status_code == 200
    assert events(custody.shipment) == first
    custody.shipment.refresh_from_db()
    assert (custody.shipment.status, custody.shipment.status_at, custody.shipment.last_event_at) == state


def test_a_browser_form_upload_with_a_file_field_works(custody, partner_client):
    form = {"file": SimpleUploadedFile("today.csv", DAY.encode(), content_type="text/csv")}

    response = partner_client(custody.partner).post(UPLOAD_URL, data=form)  # multipart/form-data

    assert response.status_code == 200, response.json()
    assert (response.json()["rows"], response.json()["accepted"]) == (5, 2)
    assert bytes(InboundMessage.objects.get().body) == DAY.encode()
    custody.shipment.refresh_from_db()
    assert custody.shipment.status == "out_for_delivery"


def test_a_form_without_the_file_field_is_400(custody, partner_client):
    response = partner_client(custody.partner).post(UPLOAD_URL, data={"other": "x"})

    assert response.status_code == 400
    assert "file" in response.json()["fields"]


def test_a_file_without_the_required_columns_is_400(custody, partner_client):
    response = upload_text(partner_client(custody.partner), "ref,when\nSWIFT-77,today\n")

    assert response.status_code == 400
    assert response.json()["fields"]["file"] == ["missing column(s): occurred_at, reference, status"]
    assert TrackingEvent.objects.count() == 0


def test_extra_columns_cannot_set_what_only_baton_decides(custody, partner_client):
    text = (
        "reference,status,occurred_at,kind,sub_status,proof,applied\n"
        f"SWIFT-77,picked_up,{at(0)},handoff,at_pickup,forged,false\n"
    )

    response = upload_text(partner_client(custody.partner), text)

    assert response.status_code == 200
    stored = TrackingEvent.objects.get()
    assert (stored.kind, stored.status, stored.sub_status, stored.proof, stored.applied) == (
        "status",
        "picked_up",
        "",
        None,
        True,
    )


def test_template_has_the_documented_columns_and_its_example_uploads(partner, partner_client):
    CustodyFactory(partner=partner, partner_reference="JOB-1042")
    template = partner_client(partner).get(TEMPLATE_URL)

    rows = list(csv.DictReader(io.StringIO(template.content.decode())))

    assert template.status_code == 200
    assert template["Content-Type"].startswith("text/csv")
    assert list(rows[0]) == DOCUMENTED_COLUMNS
    assert rows[0]["reference"] == "JOB-1042"
    uploaded = upload_text(partner_client(partner), template.content.decode())
    assert (uploaded.json()["accepted"], uploaded.json()["errors"]) == (1, [])
    assert TrackingEvent.objects.get().status == "delivered"


def test_a_row_the_report_refused_stays_refused_after_the_job_is_assigned(custody, partner_client):
    from partners.services import assign_shipment

    upload_text(partner_client(custody.partner), DAY)
    other = CustodyFactory(partner_reference="SOMEONE-ELSE").shipment
    other.reference = "NOT-OURS"
    other.save()

    assign_shipment(other, partner=custody.partner, partner_reference="SWIFT-NEW")

    assert (
        InboundMessage.objects.get(channel=InboundMessage.Channel.UPLOAD).state
        == InboundMessage.State.PROCESSED
    )
    assert not TrackingEvent.objects.filter(shipment=other, status="delivered").exists()
