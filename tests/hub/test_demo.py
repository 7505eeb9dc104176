"""The demo tells the stories it labels, and every console quick view has something to show."""

import re

import pytest

from contactcentre import proactive
from contactcentre.models import Case
from hub.demo import STORIES, seed_day
from tracking.models import Activity, Shipment

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(db):
    proactive.ensure_default_rules()  # the migration's rules (transactional tests flush them)
    # The first shipments tell every story once.
    return seed_day(shipments=len(STORIES), seed=7)


def test_every_labelled_journey_ends_in_the_state_its_label_says(demo):
    assert sorted(set(demo.stories.values())) == sorted(STORIES)
    for reference, story in demo.stories.items():
        shipment = Shipment.objects.get(reference=reference)
        status, flag = STORIES[story]
        assert shipment.status == status, (story, shipment.status)
        if flag:
            assert flag in shipment.all_flags, (story, shipment.all_flags)


def test_more_shipments_keep_their_labels_true(db):
    demo = seed_day(shipments=len(STORIES) + 12, seed=11)

    wrong = {
        reference: (story, status)
        for reference, story in demo.stories.items()
        if (status := Shipment.objects.get(reference=reference).status) != STORIES[story][0]
    }
    assert wrong == {}


def test_every_quick_view_of_the_console_shows_something(demo, client, django_user_model):
    client.force_login(django_user_model.objects.get(username=demo.username))
    page = client.get("/console/").content.decode()
    views = re.findall(r'href="\?([^"]+)"', page)
    assert len(views) >= 4

    empty = [
        view
        for view in views
        if "No shipment matches" in client.get(f"/console/?{view.replace('&amp;', '&')}").content.decode()
    ]

    assert empty == []


@pytest.mark.parametrize(
    ("queue", "flag"),
    [
        ("blind_spots", "stale_custodian"),
        ("blind_spots", "unacknowledged"),
        ("eta_passed", "eta_passed"),
        ("late_risk", "late_risk"),
    ],
)
def test_after_the_demo_each_sweep_flag_fills_its_console_queue(demo, client, django_user_model, queue, flag):
    client.force_login(django_user_model.objects.get(username=demo.username))

    page = client.get("/console/", {"queue": queue}).content.decode()

    flagged = Shipment.objects.open().carrying(flag)
    assert flagged.exists()
    assert all(f'href="/console/shipments/{s.reference}/"' in page for s in flagged[:5]), flag


def test_after_the_demo_the_rules_have_acted_and_a_supervisor_has_an_escalation(
    demo, client, django_user_model
):
    client.force_login(django_user_model.objects.get(username=demo.username))
    twice = next(ref for ref, story in demo.stories.items() if story == "courier silent twice")

    escalated = client.get("/console/", {"queue": "escalated"}).content.decode()
    unassigned = client.get("/console/", {"queue": "unassigned"}).content.decode()
    shipment_page = client.get(f"/console/shipments/{twice}/").content.decode()

    case = Case.objects.get(shipment__reference=twice, escalated=True)
    assert f"Case {case.pk}" in escalated
    assert "Proactive" in Case.Channel(case.channel).label
    assert Case.objects.filter(channel="proactive", owner=None).exists()
    assert "Case " in unassigned
    assert Activity.objects.filter(shipment__reference=twice, kind="chase", actor="rule").count() == 2
    assert "What Baton already did" in shipment_page
    assert "Chase a silent holder" in shipment_page
    assert "stale_custodian" in demo.sweep


def test_after_the_demo_the_dashboard_has_its_figures_by_day_and_by_partner(demo, client, django_user_model):
    client.force_login(django_user_model.objects.get(username=demo.username))
    response = client.get("/console/dashboard/", {"days": 7})
    assert response.status_code == 200
    assert response.context["rows"]  # the partners' scorecards
    assert sum(int(row["shipments"]) for row in response.context["cx_days"]) == demo.shipments
    assert sum(int(row["shipments"]) for row in response.context["cx_partners"]) > 0  # the partners' jobs
