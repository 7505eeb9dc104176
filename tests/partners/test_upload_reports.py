"""A large upload is checked in a few queries and answered with a summary; its full report is a download."""

import csv
import io

import pytest
from django.db import connection

from tests.clock import at
from tests.factories import CustodyFactory

pytestmark = pytest.mark.django_db(transaction=True)

UPLOAD_URL = "/api/partner/v1/uploads"
HEADER = "reference,status,occurred_at,event_id\n"


def bad_and_good_rows(bad: int, good: int = 2, reference: str = "SWIFT-77") -> str:
    rows = [f"{reference},teleported,{at(0)},bad-{n}\n" for n in range(bad)]
    rows += [f"NOT-OURS,delivered,{at(1)},stray-{n}\n" for n in range(bad // 2)]
    rows += [f"{reference},in_transit,{at(n)},good-{n}\n" for n in range(good)]
    return HEADER + "".join(rows)


def upload(client, text: str):
    return client.post(UPLOAD_URL, data=text.encode(), content_type="text/csv")


def test_many_refused_rows_are_summarised_and_the_full_report_is_downloaded(
    custody, partner_client, settings
):
    settings.BATON = {**settings.BATON, "UPLOAD_ERRORS_SHOWN": 5}
    client = partner_client(custody.partner)

    report = upload(client, bad_and_good_rows(300)).json()

    assert (report["rows"], report["accepted"], report["refused"]) == (452, 2, 450)
    assert [e["row"] for e in report["errors"]] == [2, 3, 4, 5, 6]
    assert report["errors_by_field"] == {"status": 300, "reference": 150}
    download = client.get(report["report_url"])
    assert download.status_code == 200
    assert download["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(download.content.decode())))
    assert lines[0] == ["line", "field", "message"]
    assert len(lines) == 1 + 450
    assert lines[1] == ["2", "status", '"teleported" is not a valid choice.']
    assert lines[-1] == ["451", "reference", "no shipment held by you under 'NOT-OURS'"]


def test_an_upload_with_nothing_refused_has_no_report_url(custody, partner_client):
    report = upload(partner_client(custody.partner), bad_and_good_rows(0)).json()

    assert (report["refused"], report["errors"], report["report_url"]) == (0, [], None)


def test_only_the_partner_that_uploaded_can_download_the_report(custody, partner_client):
    report = upload(partner_client(custody.partner), bad_and_good_rows(3)).json()
    other = CustodyFactory(partner_reference="OTHER-1").partner

    theirs = partner_client(other).get(report["report_url"])
    anonymous = partner_client(custody.partner).__class__().get(report["report_url"])

    assert theirs.status_code == 404
    assert theirs.json()["error"] == "not_found"
    assert anonymous.status_code == 401


def test_checking_an_upload_costs_the_same_queries_for_10_or_3000_rows(custody, partner_client):
    client = partner_client(custody.partner)

    def queries(bad: int) -> int:
        job = CustodyFactory(partner=custody.partner, partner_reference=f"JOB-{bad}")  # a fresh timeline
        seen: list[str] = []
        with connection.execute_wrapper(lambda execute, sql, *args: seen.append(sql) or execute(sql, *args)):
            assert upload(client, bad_and_good_rows(bad, reference=job.partner_reference)).status_code == 200
        return len(seen)

    queries(1)  # the key's partner and the merchant's webhook endpoints are cached from here on
    assert queries(3000) == queries(10)


def test_a_row_quoting_a_nul_character_back_is_refused_by_line_and_its_report_stored(custody, partner_client):
    text = HEADER + f"SWIFT-77,in\x00transit,{at(0)},nul-1\nSWIFT-77,in_transit,{at(1)},ok-1\n"

    report = upload(partner_client(custody.partner), text).json()

    assert (report["accepted"], report["refused"]) == (1, 1)
    assert report["errors"][0]["message"] == 'status: "in\\u0000transit" is not a valid choice.'
