"""The operations dashboard in a browser: charts drawn from static files, keyboard use, axe-clean."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from contactcentre.models import ContactDayFigures
from partners.services import scorecards
from tests.browser.conftest import assert_accessible, log_in
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def operations(django_user_model):
    group, _ = Group.objects.get_or_create(name="operations")
    group.permissions.add(Permission.objects.get(content_type__app_label="contactcentre", codename="operate"))
    user = django_user_model.objects.create_user("ops", password="pw")
    user.groups.add(group)
    today = timezone.localdate()
    partners = {slug: PartnerFactory(slug=slug) for slug in ("swift", "zoom")}
    for back in range(5):
        day = today - timedelta(days=back)
        scorecards.store_day(
            day,
            {
                (partners[slug].pk, "N1", "morning"): dict(
                    jobs=30,
                    delivered=28,
                    with_window=28,
                    on_time=on_time,
                    attempted=29,
                    first_attempt=25,
                    events=60,
                    lat_2=60,
                )
                for slug, on_time in (("swift", 26), ("zoom", 12))
            },
        )
        # Everyone's figures: the partners' shares and one contact about a shipment nobody held.
        ContactDayFigures.objects.create(
            day=day,
            shipments=200,
            contacts=10,
            wismo=8,
            resolved=10,
            first_contact=3,
            close_seconds=9 * 3600 + 600,
            close_0=1,
            close_3=9,
            proactive_sent=80,
            contacts_after_proactive=4,
        )
        for slug, contacts in (("swift", 2), ("zoom", 7)):
            ContactDayFigures.objects.create(
                day=day,
                partner=partners[slug],
                shipments=100,
                contacts=contacts,
                wismo=contacts - 1,
                resolved=contacts,
                first_contact=1,
                close_seconds=contacts * 3600,
                close_3=contacts,
                proactive_sent=40,
                contacts_after_proactive=contacts // 2,
            )
    return user


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_the_dashboard_draws_its_charts_and_passes_axe(request, device, live_server, operations):
    context = request.getfixturevalue(device)
    log_in(context, live_server, operations)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"{live_server.url}/console/dashboard/?days=7&area=N1&band=morning")

    assert page.get_by_role("heading", level=1, name="Partners and contact centre").is_visible()
    assert page.get_by_role("heading", level=2, name="Who should get the next job?").is_visible()
    assert page.get_by_role("row", name="1 swift").is_visible()
    # Chart.js (served from static files) drew on every canvas.
    page.wait_for_function("document.querySelectorAll('canvas').length === 7 && window.Chart !== undefined")
    drawn = page.evaluate("Array.from(document.querySelectorAll('canvas')).map(c => !!Chart.getChart(c))")
    assert drawn == [True] * 7
    # The contact-centre figures by partner sit beside those by day, with the same charts.
    assert page.get_by_role("heading", level=3, name="By partner").is_visible()
    assert page.get_by_role("row", name="zoom 500 35").is_visible()
    assert page.get_by_role("row", name="No partner held it — 5").is_visible()
    assert errors == []
    if device == "phone":
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert_accessible(page)


def test_the_filters_work_from_the_keyboard(desktop, live_server, operations):
    log_in(desktop, live_server, operations)
    page = desktop.new_page()
    page.goto(f"{live_server.url}/console/dashboard/")

    page.get_by_label("Postcode district").focus()
    page.keyboard.type("N1")
    page.get_by_label("Time of day").select_option("morning")
    page.get_by_label("Time of day").focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")

    page.wait_for_url("**area=N1**")
    assert page.get_by_role("row", name="1 swift").is_visible()
