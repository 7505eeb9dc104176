"""The demo tells the stories it labels, and every console quick view has something to show."""

import re

import pytest

from hub.demo import STORIES, seed_day
from tracking.models import Shipment

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(db):
    # The first shipments tell every story once.
    return seed_day(shipments=len(STORIES), seed=7)


def test_every_labelled_journey_ends_in_the_state_its_label_says(demo):
    assert sorted(set(demo.stories.values())) == sorted(STORIES)
    for reference, story in demo.stories.items():
        shipment = Shipment.objects.get(reference=reference)
        status, flag = STORIES[story]
        assert shipment.status == status, (story, shipment.status)
        if flag:
            assert flag in shipment.flags, (story, shipment.flags)


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
