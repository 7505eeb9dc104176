"""The operations page in a browser: readable at phone width, keyboard-usable replay, no axe violation."""

import pytest
from django.utils import timezone

from contactcentre.roles import OPERATIONS
from partners.models import InboundMessage
from tests.browser.conftest import assert_accessible, log_in
from tests.factories import PartnerFactory, give_role

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def operator(django_user_model):
    user = django_user_model.objects.create_user("ops", password="pw", is_staff=True)
    give_role(user, OPERATIONS)
    return user


def stored(partner, state):
    return InboundMessage.objects.create(
        partner=partner,
        channel="webhook",
        body=b"{}",
        content_hash="h",
        received_at=timezone.now(),
        state=state,
    )


@pytest.mark.parametrize("context_name", ["desktop", "phone"])
def test_operator_replays_failed_messages_from_the_operations_page(
    context_name, request, live_server, operator
):
    context = request.getfixturevalue(context_name)
    partner = PartnerFactory(slug="swift", name="Swift Couriers")
    failed = stored(partner, InboundMessage.State.FAILED)
    stored(partner, InboundMessage.State.UNMATCHED)
    stored(partner, InboundMessage.State.RECEIVED)
    log_in(context, live_server, operator)
    page = context.new_page()

    page.goto(f"{live_server.url}/console/operations/")

    assert page.get_by_role("heading", level=1, name="Operations").is_visible()
    assert page.get_by_text("Waiting for the worker").is_visible()
    if context_name == "phone":
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert_accessible(page)
    button = page.get_by_role("button", name="Replay 1 failed from Swift Couriers")
    button.focus()
    page.keyboard.press("Enter")

    page.get_by_role("status").get_by_text("1 failed message(s) from Swift Couriers queued again.").wait_for()
    assert InboundMessage.objects.get(pk=failed.pk).attempts == 1  # processed again (and failed again: "{}")
    assert_accessible(page)
