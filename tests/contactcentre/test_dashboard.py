import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from contactcentre import figures
from contactcentre.models import Case, ContactDayFigures
from contactcentre.services import open_case
from partners.services import scorecards
from tests.factories import CustodyFactory, PartnerFactory, ShipmentFactory
from tracking.models import OutboundMessage

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops_web(client, operations_user):
    client.force_login(operations_user)
    return client


@pytest.fixture
def figures_rows(db):
    swift, zoom = PartnerFactory(slug="swift"), PartnerFactory(slug="zoom")
    today = timezone.localdate()
    for back in range(3):
        rows = {
            (swift.pk, "N1", "morning"): dict(
                jobs=30,
                delivered=28,
                with_window=28,
                on_time=26,
                attempted=29,
                first_attempt=27,
                with_proof=25,
                silent_seconds=30 * 600,
                events=120,
                lat_1=100,
                lat_5=20,
                cases=1,
            ),
            (zoom.pk, "N1", "morning"): dict(
                jobs=25,
                delivered=20,
                with_window=20,
                on_time=10,
                attempted=24,
                first_attempt=15,
                with_proof=5,
                silent_seconds=25 * 3600,
                events=40,
                lat_8=40,
                cases=6,
                handed_on=3,
            ),
        }
        if back == 0:
            rows[(zoom.pk, "", "")] = dict(messages=10, unmatched=4)
        scorecards.store_day(today - timedelta(days=back), rows)
    return swift, zoom


def test_the_dashboard_is_for_operations_only(client, django_user_model, figures_rows):
    assert client.get("/console/dashboard/").status_code == 302  # to the login page
    agent = django_user_model.objects.create_user("agent", password="pw", is_staff=True)
    client.force_login(agent)
    assert client.get("/console/dashboard/").status_code == 403
    assert client.get("/console/dashboard/scorecards.csv").status_code == 403
    assert client.get("/console/dashboard/contact-centre.csv").status_code == 403


def test_the_dashboard_shows_scorecards_with_sample_sizes_and_a_recommendation(ops_web, figures_rows):
    response = ops_web.get("/console/dashboard/", {"days": 7, "area": "n1", "band": "morning"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Who should get the next job?" in html
    ranked = response.context["recommendation"]
    assert [c.partner for c in ranked] == ["swift", "zoom"]
    assert ranked[0].enough_data
    assert "of 84 delivered with a window" in ranked[0].reasons[0]
    rows = {r["partner"]: r for r in response.context["rows"]}
    assert rows["swift"]["on_time"] == round(100 * 78 / 84, 1)
    assert rows["zoom"]["unmatched"] == 40.0
    assert rows["zoom"]["t"].handed_on == 9
    trend = response.context["charts"]["trend"]
    assert len(trend["labels"]) == 3
    assert trend["series"] == {"swift": [round(100 * 26 / 28, 1)] * 3, "zoom": [50.0] * 3}
    assert 'id="dashboard-data"' in html
    assert "<script>" not in html  # scripts come from static files only


def test_a_bad_filter_is_a_400_with_the_reason(ops_web):
    response = ops_web.get("/console/dashboard/", {"area": "not a district"})
    assert response.status_code == 400
    assert "Enter a postcode district" in response.content.decode()
    assert ops_web.get("/console/dashboard/", {"days": "5000"}).status_code == 400
    assert ops_web.get("/console/dashboard/scorecards.csv", {"grain": "year"}).status_code == 400
    assert (
        ops_web.get("/console/dashboard/scorecards.csv", {"grain": "year"})["Content-Type"]
        == "application/json"
    )


def test_every_scorecard_figure_exports_as_csv(ops_web, figures_rows):
    response = ops_web.get("/console/dashboard/scorecards.csv", {"days": 7, "grain": "week"})
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    header = rows[0]
    assert {"on_time_rate", "latency_p90_s", "silent_minutes_per_job", "pod_coverage", "cases_caused"} <= set(
        header
    )
    assert {r[0] for r in rows[1:]} == {"swift", "zoom"}
    jobs = sum(int(r[header.index("jobs")]) for r in rows[1:])
    assert jobs == 3 * 30 + 3 * 25


def test_the_table_and_the_ranking_export_as_csv_with_their_evidence(ops_web, figures_rows):
    response = ops_web.get("/console/dashboard/scorecards.csv", {"days": 7, "area": "N1", "by": "partner"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    header = rows[0]
    by_partner = {r[0]: dict(zip(header, r, strict=True)) for r in rows[1:]}
    assert list(by_partner) == ["swift", "zoom"]
    assert by_partner["swift"]["recommendation_rank"] == "1"
    assert by_partner["zoom"]["recommendation_rank"] == "2"
    assert float(by_partner["swift"]["recommendation_score"]) > float(
        by_partner["zoom"]["recommendation_score"]
    )
    assert by_partner["swift"]["jobs"] == "90"
    assert by_partner["swift"]["on_time_sample"] == "84"
    assert by_partner["zoom"]["cases_per_100_jobs"] == f"{100 * 18 / 75:.4f}"
    assert by_partner["zoom"]["unmatched_rate"] == "0.4000"
    unranked = ops_web.get("/console/dashboard/scorecards.csv", {"days": 7, "by": "partner"})
    rows = list(csv.reader(io.StringIO(b"".join(unranked.streaming_content).decode())))
    assert {r[3] for r in rows[1:]} == {""}  # no area or band chosen: no ranking


def sent(shipment, purpose, at, transport="email"):
    return OutboundMessage.objects.create(
        transport=transport,
        purpose=purpose,
        recipient="a@example.com",
        shipment=shipment,
        state=OutboundMessage.State.SENT,
        sent_at=at,
    )


def contact(shipment, reason, *, opened, closed_after=None, escalated=False, channel=Case.Channel.PHONE):
    case = open_case(shipment, channel=channel, reason=reason)
    fields = {"created_at": opened, "escalated": escalated}
    if closed_after is not None:
        fields.update(status=Case.Status.RESOLVED, resolved_at=opened + closed_after)
    Case.objects.filter(pk=case.pk).update(**fields)
    return case


def total(days):
    summed = figures.DayFigures()
    for f in days.values():
        summed.add(f)
    return summed


@pytest.fixture
def contact_centre_day(db):
    """Within the last five hours: a held and an unheld shipment, messages, contacts and a rule's case."""
    now = timezone.now()
    swift = PartnerFactory(slug="swift")
    held = ShipmentFactory()
    CustodyFactory(shipment=held, partner=swift, partner_reference="S1", started_at=now - timedelta(hours=5))
    quiet = ShipmentFactory()
    sent(held, "customer.out_for_delivery", now - timedelta(hours=3))
    sent(quiet, "customer.running_late", now - timedelta(hours=3), transport="sms")
    # An agent's replies and a resent link are not proactive.
    for purpose in ("customer.agent_message", "customer.message", "customer.tracking_link"):
        sent(held, purpose, now - timedelta(hours=2))
    contact(
        held,
        Case.Reason.WHERE_IS_MY_ORDER,
        opened=now - timedelta(hours=2),
        closed_after=timedelta(minutes=10),
    )
    contact(
        held,
        Case.Reason.DAMAGED,
        opened=now - timedelta(hours=2),
        closed_after=timedelta(hours=1, minutes=30),
        channel=Case.Channel.EMAIL,
        escalated=True,
    )
    rule_case = open_case(quiet, channel=Case.Channel.PROACTIVE, reason=Case.Reason.LATE, rule="late_risk")
    Case.objects.filter(pk=rule_case.pk).update(
        status=Case.Status.RESOLVED,
        resolved_at=now - timedelta(minutes=1),
        created_at=now - timedelta(hours=1),
    )
    # The last two days cover the last five hours, whatever the time of day.
    figures.materialise_recent(days=2, now=now)
    return swift


def test_contact_centre_figures_by_day(contact_centre_day):
    days = figures.by_day(timezone.localdate() - timedelta(days=1), timezone.localdate())
    summed = total(days)
    assert (summed.shipments, summed.contacts, summed.wismo) == (2, 2, 1)  # the rule's case is not a contact
    assert (summed.resolved, summed.first_contact) == (2, 1)  # nor is it resolved at first contact
    assert summed.close == [1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    assert summed.median_close_label == "≤ 15 min"
    assert summed.mean_close_hours == pytest.approx((10 + 90) / 60 / 2)
    assert (summed.proactive_sent, summed.contacts_after_proactive) == (2, 1)
    assert summed.contacts_per_100_proactive == 50.0


def test_contact_centre_figures_by_partner_count_what_happened_while_it_held_the_shipment(contact_centre_day):
    partners = figures.by_partner(timezone.localdate() - timedelta(days=1), timezone.localdate())
    assert list(partners) == ["swift", figures.NO_HOLDER]
    held = partners["swift"]
    assert (held.shipments, held.contacts, held.wismo, held.wismo_per_100) == (1, 2, 1, 100.0)
    assert (held.resolved, held.first_contact) == (2, 1)
    assert (held.proactive_sent, held.contacts_after_proactive) == (1, 1)
    nobody = partners[figures.NO_HOLDER]  # the message about the shipment nobody held yet
    assert (nobody.shipments, nobody.contacts, nobody.proactive_sent, nobody.contacts_after_proactive) == (
        0,
        0,
        1,
        0,
    )


def test_materialising_a_day_again_replaces_it(contact_centre_day):
    before = ContactDayFigures.objects.count()
    figures.materialise_recent(days=2)
    assert ContactDayFigures.objects.count() == before
    assert ContactDayFigures.objects.filter(partner__isnull=True).count() == 2


def test_the_dashboard_shows_contact_centre_figures_by_day_and_by_partner(ops_web, contact_centre_day):
    response = ops_web.get("/console/dashboard/", {"days": 7})
    assert response.status_code == 200
    html = response.content.decode()
    assert "By partner" in html
    assert "No partner held it" in html
    charts = response.context["charts"]
    assert charts["partner-wismo"]["labels"] == ["swift"]
    assert charts["partner-wismo"]["series"] == {"WISMO contacts per 100 jobs": [100.0]}
    # The same comparison by day and by partner: the contact rate beside the rate after a proactive message.
    assert len(charts["proactive"]["series"]) == len(charts["partner-proactive"]["series"]) == 2
    assert charts["partner-proactive"]["series"]["Contacts within 24 h per 100 proactive messages"] == [100.0]


def read_csv(response):
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_contact_centre_figures_export_by_day_and_by_partner(ops_web, contact_centre_day):
    by_day = read_csv(ops_web.get("/console/dashboard/contact-centre.csv", {"days": 7}))
    assert by_day[0][0] == "day"
    assert sum(int(r[by_day[0].index("contacts")]) for r in by_day[1:]) == 2
    by_partner = read_csv(ops_web.get("/console/dashboard/contact-centre.csv", {"days": 7, "by": "partner"}))
    header = by_partner[0]
    assert header[0] == "partner"
    assert header == ["partner", *by_day[0][1:]]  # the same figures either way
    swift = next(r for r in by_partner if r[0] == "swift")
    assert swift[header.index("contacts")] == "2"
    assert swift[header.index("proactive_sent")] == "1"
    assert swift[header.index("contacts_within_24h_of_proactive")] == "1"
    assert swift[header.index("first_contact_resolution")] == "0.5000"
    assert {"closed_0_15_min", "closed_over_10080_min", "median_hours_to_close_at_most"} <= set(header)


def test_an_export_with_a_bad_choice_is_a_400_naming_the_field(ops_web):
    response = ops_web.get("/console/dashboard/contact-centre.csv", {"by": "merchant"})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert list(body["fields"]) == ["by"]
    assert body["message"].startswith("by: ")
    response = ops_web.get("/console/dashboard/scorecards.csv", {"days": "5000", "area": "x y"})
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"days", "area"}
