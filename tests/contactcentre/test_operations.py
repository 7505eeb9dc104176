"""The operations page: backlog, oldest waiting, lag percentiles, failed and unmatched per partner, replay."""

from datetime import timedelta

import pytest
from django.utils import timezone

from contactcentre.roles import AGENT, OPERATIONS
from contactcentre.views import duration_text
from partners.models import InboundMessage
from partners.services import backlog
from tests.factories import PartnerFactory, give_role

pytestmark = pytest.mark.django_db

State = InboundMessage.State


def message(partner, *, state=State.RECEIVED, received_ago=0.0, lag=None, now=None):
    now = now or timezone.now()
    received = now - timedelta(seconds=received_ago)
    return InboundMessage.objects.create(
        partner=partner,
        channel="api",
        body=b"{}",
        content_hash="h",
        received_at=received,
        state=state,
        processed_at=None if lag is None else received + timedelta(seconds=lag),
    )


@pytest.fixture
def ops_client(client, django_user_model):
    user = django_user_model.objects.create_user("ops", password="pw", is_staff=True)
    give_role(user, OPERATIONS)
    client.force_login(user)
    return client


def test_lag_percentiles_are_nearest_rank_over_the_window(partner):
    now = timezone.now()
    for lag in range(1, 101):  # lags of 1..100 s, all finished within the hour
        message(partner, state=State.PROCESSED, received_ago=lag + 60, lag=lag, now=now)
    # Finished before the window: left out.
    message(partner, state=State.PROCESSED, received_ago=3 * 3600, lag=5000, now=now)

    lag = backlog.lag_percentiles(since=now - timedelta(hours=1))

    assert lag == {0.5: 50.0, 0.99: 99.0}
    assert backlog.finished_count(since=now - timedelta(hours=1)) == 100


def test_lag_percentiles_of_an_idle_hour_are_unknown():
    assert backlog.lag_percentiles(since=timezone.now() - timedelta(hours=1)) == {0.5: None, 0.99: None}


def test_unresolved_by_partner_leaves_out_partners_without_problems(partner):
    quiet = PartnerFactory(slug="quiet")
    message(partner, state=State.FAILED)
    message(partner, state=State.UNMATCHED)
    message(partner, state=State.UNMATCHED)
    message(quiet, state=State.PROCESSED, lag=1)

    rows = backlog.unresolved_by_partner()

    assert [(r.partner.slug, r.failed, r.unmatched) for r in rows] == [("swift-couriers", 1, 2)]


def test_operations_page_shows_backlog_lag_and_problems(ops_client, partner):
    message(partner, received_ago=125)
    message(partner, state=State.PROCESSED, received_ago=600, lag=2)
    message(partner, state=State.FAILED)
    message(partner, state=State.UNMATCHED, received_ago=30, lag=1)

    response = ops_client.get("/console/operations/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "<h1>Operations</h1>" in page
    assert "2 min 5 s" in page or "2 min 6 s" in page  # the oldest waiting message
    assert 'Replay 1 failed<span class="visually-hidden"> from Swift Couriers</span>' in page
    assert "state__exact=unmatched" in page
    assert response.context["lag_p99"] == "2.0 s"


def test_replay_button_requeues_that_partners_messages_in_that_state(ops_client, partner, custody):
    other = PartnerFactory(slug="other")
    failed = message(partner, state=State.FAILED)
    unmatched = message(partner, state=State.UNMATCHED)
    elsewhere = message(other, state=State.FAILED)

    with pytest.MonkeyPatch.context() as patch:
        queued = []
        patch.setattr("partners.services.inbound.enqueue_processing", queued.extend)
        response = ops_client.post(
            "/console/operations/replay", {"partner": partner.slug, "state": "failed"}, follow=True
        )

    assert response.redirect_chain == [("/console/operations/", 302)]
    assert queued == [failed.pk]
    assert "1 failed message(s) from Swift Couriers queued again." in response.content.decode()
    states = dict(InboundMessage.objects.values_list("pk", "state"))
    assert states == {failed.pk: State.RECEIVED, unmatched.pk: State.UNMATCHED, elsewhere.pk: State.FAILED}


def test_replay_refuses_a_state_that_is_not_replayable(ops_client, partner):
    processed = message(partner, state=State.PROCESSED, lag=1)

    response = ops_client.post("/console/operations/replay", {"partner": partner.slug, "state": "processed"})

    assert response.status_code == 302
    assert InboundMessage.objects.get(pk=processed.pk).state == State.PROCESSED


def test_operations_page_is_for_staff_only(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("customer", password="pw"))

    assert client.get("/console/operations/").status_code == 302
    assert client.post("/console/operations/replay", {"partner": "x", "state": "failed"}).status_code == 302


def test_an_agent_without_the_operations_role_cannot_see_or_replay(client, django_user_model, partner):
    agent = django_user_model.objects.create_user("agent", password="pw", is_staff=True)
    give_role(agent, AGENT)
    client.force_login(agent)
    failed = message(partner, state=State.FAILED)

    assert client.get("/console/operations/").status_code == 403
    assert (
        client.post("/console/operations/replay", {"partner": partner.slug, "state": "failed"}).status_code
        == 403
    )
    assert InboundMessage.objects.get(pk=failed.pk).state == State.FAILED


def test_replay_needs_post(ops_client):
    assert ops_client.get("/console/operations/replay").status_code == 405


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "no data"), (0.42, "0.4 s"), (42, "42 s"), (200, "3 min 20 s"), (3900, "1 h 5 min")],
)
def test_durations_read_as_words(seconds, text):
    assert duration_text(seconds) == text
