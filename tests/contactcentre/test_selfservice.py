"""The customer's forms: validated, length-limited, escaped, refused when finished, routed, recorded."""

import pytest
from django.core import mail
from django.core.cache import cache
from django.utils import timezone

from contactcentre import selfservice
from contactcentre.models import Case, Subscription
from tests.factories import CustodyFactory, PartnerFactory, ShipmentFactory
from tracking import public
from tracking.models import Activity, OutboundMessage

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def custody(db):
    partner = PartnerFactory(name="Swift Couriers", ops_email="ops@swift.example")
    return CustodyFactory(
        shipment=ShipmentFactory(reference="ORD-9"), partner=partner, partner_reference="SW-9"
    )


def page(client, shipment):
    return client.get(f"/t/{shipment.token}").content.decode()


def test_instructions_are_sent_to_the_holder_and_the_customer_sees_it_arrived(client, custody):
    shipment = custody.shipment
    response = client.post(
        f"/t/{shipment.token}/instructions",
        {"safe_place": "Porch", "access_code": "4411", "note": "<script>alert(1)</script>"},
    )

    assert response.status_code == 302
    assert response["Location"] == f"/t/{shipment.token}"
    [email] = mail.outbox
    assert "Access code: 4411" in email.body
    assert "<script>alert(1)</script>" in email.body
    html = page(client, shipment)
    assert "Your instructions are on their way" in html
    assert "Received by Swift Couriers." in html
    assert "access code given" in html
    assert "4411" not in html
    assert "<script>alert(1)</script>" not in html
    activity = Activity.objects.get(kind="instruction")
    assert activity.actor == "customer"
    assert activity.details["fields"]["access_code"] == "4411"


def test_instructions_are_validated_and_length_limited(client, custody):
    token = custody.shipment.token
    empty = client.post(f"/t/{token}/instructions", {"note": "   "})
    long = client.post(f"/t/{token}/instructions", {"safe_place": "x" * 101})

    assert empty.status_code == long.status_code == 400
    assert "Fill in at least one of the fields." in empty.content.decode()
    assert "at most 100 characters" in long.content.decode()
    assert Activity.objects.count() == 0


def test_control_characters_are_dropped():
    from tracking.forms import InstructionsForm

    form = InstructionsForm({"safe_place": "porch\x00\x1b[31m\nback", "note": "line 1\nline 2"})
    assert form.is_valid()
    assert form.cleaned_data["safe_place"] == "porch[31m back"
    assert form.cleaned_data["note"] == "line 1\nline 2"


def test_requests_are_refused_once_the_job_is_finished(client, custody):
    shipment = custody.shipment
    shipment.status = "delivered"
    shipment.save()

    with pytest.raises(selfservice.Refused):
        selfservice.leave_instructions(shipment, note="hello")
    response = client.post(f"/t/{shipment.token}/instructions", {"note": "hello"}, follow=True)

    assert "This delivery is finished" in response.content.decode()
    assert Activity.objects.count() == 0
    assert OutboundMessage.objects.count() == 0
    assert "Leave delivery instructions" not in page(client, shipment)


def test_reschedule_offers_only_the_merchants_windows(client, custody):
    shipment = custody.shipment
    start = timezone.now().replace(microsecond=0) + timezone.timedelta(days=2)
    end = start + timezone.timedelta(hours=4)
    shipment.reschedule_options = [{"from": start.isoformat(), "until": end.isoformat()}]
    shipment.save()
    [(value, _label)] = public.reschedule_choices(shipment)

    bad = client.post(
        f"/t/{shipment.token}/reschedule", {"window": "2030-01-01T00:00:00+00:00/2030-01-01T04:00:00+00:00"}
    )
    good = client.post(f"/t/{shipment.token}/reschedule", {"window": value})

    assert bad.status_code == 400
    assert good.status_code == 302
    activity = Activity.objects.get(kind="reschedule")
    assert activity.details["from"] == start.isoformat()
    assert "a new delivery day" in mail.outbox[0].subject


def test_cancel_only_where_the_merchant_allows_and_before_the_courier_sets_off(client, custody):
    shipment = custody.shipment
    assert "Cancel the delivery" not in page(client, shipment)
    with pytest.raises(selfservice.Refused):
        selfservice.request_cancellation(shipment)

    shipment.allow_cancel = True
    shipment.save()
    assert "Cancel the delivery" in page(client, shipment)
    assert (
        client.post(
            f"/t/{shipment.token}/cancel", {"confirm": "on", "reason": "Bought elsewhere"}
        ).status_code
        == 302
    )
    assert Activity.objects.get(kind="cancel_request").details["reason"] == "Bought elsewhere"

    shipment.status = "out_for_delivery"
    shipment.save()
    with pytest.raises(selfservice.Refused, match="already on the way"):
        selfservice.request_cancellation(shipment)


def test_report_a_problem_opens_a_web_case_with_the_shipments_context(client, custody):
    shipment = custody.shipment
    response = client.post(
        f"/t/{shipment.token}/problem",
        {"reason": "not_received", "description": "Nothing on the doorstep", "contact": "07700 900123"},
        follow=True,
    )

    case = Case.objects.get()
    assert case.shipment == shipment
    assert case.channel == "web"
    assert case.reason == "not_received"
    assert case.notes.get().body == "Nothing on the doorstep"
    assert case.contact_detail == "07700 900123"
    assert f"number {case.pk}" in response.content.decode()
    assert "Problem reported" in response.content.decode()
    assert Activity.objects.get(kind="case_opened").actor == "customer"


def test_subscribe_on_the_page(client, custody):
    shipment = custody.shipment
    bad = client.post(f"/t/{shipment.token}/subscribe", {"phone": "call me"})
    assert bad.status_code == 400
    assert "Enter a mobile number" in bad.content.decode()

    ok = client.post(
        f"/t/{shipment.token}/subscribe",
        {"email": "Grace@Example.com", "phone": "+44 7700 900123", "time_zone": "Europe/Paris"},
        follow=True,
    )

    assert {(s.channel, s.address, s.time_zone) for s in Subscription.objects.all()} == {
        ("email", "grace@example.com", "Europe/Paris"),
        ("sms", "+447700900123", "Europe/Paris"),
    }
    html = ok.content.decode()
    assert "By e-mail to g•••@example.com" in html
    assert "grace@example.com" not in html


def test_forms_are_rate_limited_per_link(client, custody, settings):
    settings.BATON = {**settings.BATON, "CUSTOMER_RATE_LIMIT": 2}
    url = f"/t/{custody.shipment.token}/problem"
    codes = [client.post(url, {"reason": "other"}).status_code for _ in range(3)]
    assert codes == [302, 302, 429]
    assert Case.objects.count() == 2


def test_a_bad_token_posts_nowhere(client, db):
    assert client.post("/t/nope/instructions", {"note": "x"}).status_code == 404
    assert client.get("/t/nope/instructions").status_code == 405
