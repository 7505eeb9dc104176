import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from contactcentre import figures
from contactcentre.models import Case
from contactcentre.services import open_case
from partners.models import PartnerDayFigures
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
        PartnerDayFigures.objects.create(
            partner=swift,
            day=today - timedelta(days=back),
            area="N1",
            band="morning",
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
        )
        PartnerDayFigures.objects.create(
            partner=zoom,
            day=today - timedelta(days=back),
            area="N1",
            band="morning",
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
        )
    PartnerDayFigures.objects.create(partner=zoom, day=today, area="", band="", messages=10, unmatched=4)
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
    assert 'id="dashboard-data"' in html
    assert "<script>" not in html  # scripts come from static files only


def test_a_bad_filter_is_a_400_with_the_reason(ops_web):
    response = ops_web.get("/console/dashboard/", {"area": "not a district"})
    assert response.status_code == 400
    assert "Enter a postcode district" in response.content.decode()
    assert ops_web.get("/console/dashboard/", {"days": "5000"}).status_code == 400
    assert ops_web.get("/console/dashboard/scorecards.csv", {"grain": "year"}).status_code == 400


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


def test_contact_centre_figures_by_day_and_by_partner(ops_web):
    now = timezone.now()
    swift = PartnerFactory(slug="swift")
    held = ShipmentFactory()
    CustodyFactory(shipment=held, partner=swift, partner_reference="S1", started_at=now - timedelta(hours=5))
    quiet = ShipmentFactory()
    OutboundMessage.objects.create(
        transport="email",
        purpose="customer.out_for_delivery",
        recipient="a@example.com",
        shipment=held,
        state=OutboundMessage.State.SENT,
        sent_at=now - timedelta(hours=3),
    )
    OutboundMessage.objects.create(
        transport="sms",
        purpose="customer.delayed",
        recipient="+447700900000",
        shipment=quiet,
        state=OutboundMessage.State.SENT,
        sent_at=now - timedelta(hours=3),
    )
    OutboundMessage.objects.create(
        transport="email",
        purpose="customer.agent_message",
        recipient="a@example.com",
        shipment=held,
        state=OutboundMessage.State.SENT,
        sent_at=now - timedelta(hours=2),
    )
    quick = open_case(held, channel=Case.Channel.PHONE, reason=Case.Reason.WHERE_IS_MY_ORDER)
    Case.objects.filter(pk=quick.pk).update(
        status=Case.Status.RESOLVED, resolved_at=quick.created_at + timedelta(minutes=10)
    )
    slow = open_case(held, channel=Case.Channel.EMAIL, reason=Case.Reason.DAMAGED)
    Case.objects.filter(pk=slow.pk).update(
        status=Case.Status.RESOLVED, resolved_at=slow.created_at + timedelta(hours=2), escalated=True
    )
    open_case(quiet, channel=Case.Channel.PROACTIVE, reason=Case.Reason.LATE, rule="late_risk")

    start, end = now - timedelta(days=1), now + timedelta(hours=3)
    days = figures.by_day(start, end)
    total = figures.DayFigures()
    for f in days.values():
        total.shipments += f.shipments
        total.contacts += f.contacts
        total.wismo += f.wismo
        total.resolved += f.resolved
        total.first_contact += f.first_contact
        total.proactive_sent += f.proactive_sent
        total.contacts_after_proactive += f.contacts_after_proactive
    assert (total.shipments, total.contacts, total.wismo) == (2, 2, 1)  # the rule's case is not a contact
    assert (total.resolved, total.first_contact) == (2, 1)
    assert (total.proactive_sent, total.contacts_after_proactive) == (2, 1)
    assert figures.cases_by_partner(start, end) == {"swift": {"contacts": 2, "wismo": 1}}

    response = ops_web.get("/console/dashboard/contact-centre.csv", {"days": 7})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][0] == "day"
    assert sum(int(r[2]) for r in rows[1:]) == 2
