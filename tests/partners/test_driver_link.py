"""The driver link: a contractor with no system reports on its jobs from a phone."""

import io
import re
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone
from PIL import Image

from partners.models import DriverLink, InboundMessage
from partners.services import assign_shipment, driver_links
from tests.factories import PartnerFactory, ShipmentFactory
from tracking.models import Activity, OutboundMessage, TrackingEvent
from tracking.services import proof_file_url

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def van_man():
    return PartnerFactory(
        slug="two-men-and-a-van",
        name="Two Men and a Van",
        sends_driver_links=True,
        driver_contact="+447700900123",
    )


@pytest.fixture
def job(van_man):
    return assign_shipment(ShipmentFactory(reference="ORD-2001"), partner=van_man, partner_reference="VAN-1")


def link_of(job):
    """The token is only in the message that was sent: read it back from there, as the driver would."""
    message = OutboundMessage.objects.filter(purpose="driver.link", shipment=job.shipment).latest("id")
    return re.search(r"/d/([\w-]+)", message.body).group(1)


def tap(client, token, job, action, **fields):
    data = {"action": action, "tap_id": str(fields.pop("tap_id", uuid.uuid4())), **fields}
    return client.post(f"/d/{token}/jobs/{job.pk}/report", data)


def jpeg(size=(40, 30), *, exif_gps=False):
    image = Image.new("RGB", size, "orange")
    out = io.BytesIO()
    exif = Image.Exif()
    if exif_gps:
        exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)}  # GPSInfo
        exif[0x010F] = "PhoneMaker"
    image.save(out, format="JPEG", exif=exif)
    out.name = "photo.jpg"
    out.seek(0)
    return out


def test_an_assignment_sends_the_contractor_a_link_by_sms_and_says_so_on_the_timeline(job):
    message = OutboundMessage.objects.get(purpose="driver.link")

    assert (message.transport, message.recipient) == ("sms", "+447700900123")
    token = link_of(job)
    assert len(token) >= 43  # 256 bits, URL-safe
    link = DriverLink.objects.get()
    assert link.token_hash != token
    assert token not in link.token_hash
    assert Activity.objects.filter(shipment=job.shipment, kind="link_sent", outbound=message).exists()


def test_a_partner_that_has_its_own_system_gets_no_link(partner):
    assign_shipment(ShipmentFactory(), partner=partner, partner_reference="SW-1")

    assert not DriverLink.objects.exists()


def test_a_link_reports_on_a_job_whose_proposed_reference_is_not_confirmed_yet(client, van_man, partner):
    job = assign_shipment(ShipmentFactory(reference="ORD-2009"), partner=partner, partner_reference="SW-1")
    from partners.services import hand_off

    handed = hand_off(partner, reference="SW-1", to_partner=van_man, to_reference="PROPOSED-1")
    assert not handed.reference_confirmed
    token = link_of(handed)

    assert tap(client, token, handed, "picked_up").status_code == 302

    event = TrackingEvent.objects.get(shipment=job.shipment, status="picked_up")
    assert (event.partner, event.custody, event.applied) == (van_man, handed, True)


def test_each_tap_becomes_a_partner_event_from_the_driver_link(client, job, agent_client):
    token = link_of(job)
    page = client.get(f"/d/{token}")
    assert page.status_code == 200
    assert "VAN-1" in page.content.decode()

    for action in ("picked_up", "on_the_way", "arrived"):
        assert tap(client, token, job, action).status_code == 302

    timeline = agent_client.get("/api/v1/shipments/ORD-2001/timeline").json()
    statuses = [(e["status"], e["source"]["channel"]) for e in timeline["entries"] if e["kind"] == "status"]
    assert statuses == [
        ("picked_up", "driver_link"),
        ("out_for_delivery", "driver_link"),
        ("arriving", "driver_link"),
    ]
    assert set(InboundMessage.objects.values_list("state", flat=True)) == {"processed"}


def test_a_double_tap_or_a_retry_records_one_event(client, job):
    token = link_of(job)
    same = uuid.uuid4()

    tap(client, token, job, "picked_up", tap_id=same)
    tap(client, token, job, "picked_up", tap_id=same)

    assert InboundMessage.objects.filter(channel="driver_link").count() == 2  # both kept as evidence
    assert TrackingEvent.objects.filter(shipment=job.shipment, status="picked_up").count() == 1


def test_a_link_cannot_reach_another_job_even_of_the_same_partner(client, job, van_man):
    token = link_of(job)
    other = assign_shipment(ShipmentFactory(reference="ORD-2002"), partner=van_man, partner_reference="VAN-2")

    response = tap(client, token, other, "delivered", recipient="Someone")

    assert response.status_code == 404
    assert not TrackingEvent.objects.filter(shipment=other.shipment).exists()


def test_a_failed_attempt_needs_a_reason_from_the_list(client, job):
    token = link_of(job)

    missing = tap(client, token, job, "failed")
    made_up = tap(client, token, job, "failed", reason="aliens")
    fine = tap(client, token, job, "failed", reason="recipient_not_home", note="Card left")

    assert (missing.status_code, made_up.status_code, fine.status_code) == (400, 400, 302)
    assert "Choose why" in missing.content.decode()
    event = TrackingEvent.objects.get(status="attempt_failed")
    assert (event.reason, event.note) == ("recipient_not_home", "Card left")


def test_delivery_with_a_photo_keeps_a_clean_copy_without_its_exif(client, job, agent_client):
    token = link_of(job)

    response = tap(
        client, token, job, "delivered", photo=jpeg(exif_gps=True), latitude="51.5034", longitude="-0.1276"
    )

    assert response.status_code == 302
    proof = TrackingEvent.objects.get(status="delivered").proof
    assert proof["location"] == {"lat": 51.5034, "lng": -0.1276}
    with default_storage.open(proof["photo"]) as stored:
        image = Image.open(stored)
        assert image.format == "JPEG"
        assert not image.getexif()
    served = agent_client.get(proof_file_url(proof["photo"]))
    assert served.status_code == 200
    assert served["Content-Type"] == "image/jpeg"


def test_a_proof_link_that_was_tampered_with_is_404(client):
    assert client.get(proof_file_url("proof/1/photo.jpg")[:-2] + "xx").status_code == 404


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (io.BytesIO(b"#!/bin/sh\necho not a photo"), "not a photo we can read"),
        (io.BytesIO(b"\xff\xd8\xff" + b"0" * 100), "not a photo we can read"),
    ],
    ids=["script", "truncated-jpeg"],
)
def test_an_upload_that_is_not_a_real_image_is_refused(client, job, upload, message):
    upload.name = "photo.jpg"
    response = tap(client, link_of(job), job, "delivered", photo=upload)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not TrackingEvent.objects.filter(status="delivered").exists()


def test_a_photo_over_the_size_limit_is_refused(client, job, monkeypatch):
    monkeypatch.setattr(driver_links, "MAX_IMAGE_BYTES", 100)

    response = tap(client, link_of(job), job, "delivered", photo=jpeg(size=(400, 400)))

    assert response.status_code == 400
    assert "too large" in response.content.decode()


def test_delivered_without_any_proof_is_refused(client, job):
    response = tap(client, link_of(job), job, "delivered")

    assert response.status_code == 400
    assert "proof of delivery" in response.content.decode()


def test_a_revoked_link_is_refused_with_a_clear_page(client, job):
    token = link_of(job)
    driver_links.revoke_driver_links(DriverLink.objects.all())

    page = client.get(f"/d/{token}")
    report = tap(client, token, job, "picked_up")

    assert page.status_code == report.status_code == 410
    assert "no longer works" in page.content.decode()
    assert not TrackingEvent.objects.exists()


def test_a_link_expires_a_grace_period_after_its_job_ends(client, job, settings):
    token = link_of(job)
    tap(client, token, job, "delivered", recipient="J. Bloggs")
    grace = settings.BATON["DRIVER_LINK_GRACE_HOURS"]

    assert client.get(f"/d/{token}").status_code == 200  # still there to look at
    with time_machine.travel(timezone.now() + timedelta(hours=grace, minutes=1)):
        page = client.get(f"/d/{token}")

    assert page.status_code == 410
    assert "expired" in page.content.decode()


def test_a_link_expires_after_its_maximum_age_even_with_the_job_open(client, job, settings):
    token = link_of(job)

    with time_machine.travel(
        timezone.now() + timedelta(days=settings.BATON["DRIVER_LINK_MAX_DAYS"], seconds=1)
    ):
        assert client.get(f"/d/{token}").status_code == 410


@pytest.mark.parametrize(
    "change", [lambda t: "nope", lambda t: "A" * 43, lambda t: t[:-1] + ("A" if t[-1] != "A" else "B")]
)
def test_an_unknown_or_tampered_link_is_404_with_a_page(client, job, change):
    response = client.get(f"/d/{change(link_of(job))}")

    assert response.status_code == 404
    assert "do not know this link" in response.content.decode()


def test_a_finished_job_takes_no_more_reports(client, job):
    token = link_of(job)
    tap(client, token, job, "delivered", recipient="J. Bloggs")

    response = tap(client, token, job, "picked_up")

    assert response.status_code == 400
    assert "finished" in response.content.decode()


def test_the_driver_can_hand_the_job_to_a_partner_operations_allowed(client, job, van_man):
    allowed = PartnerFactory(
        slug="cousin-dave", name="Cousin Dave", sends_driver_links=True, driver_contact="dave@example.com"
    )
    stranger = PartnerFactory(slug="stranger")
    van_man.driver_handoff_partners.add(allowed)
    token = link_of(job)

    refused = client.post(f"/d/{token}/jobs/{job.pk}/hand-on", {"to_partner": stranger.slug})
    handed = client.post(f"/d/{token}/jobs/{job.pk}/hand-on", {"to_partner": allowed.slug})

    assert (refused.status_code, handed.status_code) == (400, 302)
    new = job.shipment.custody.get(ended_at__isnull=True)
    assert new.partner == allowed
    assert new.partner_reference.startswith("BT-")
    assert OutboundMessage.objects.filter(
        purpose="driver.link", transport="email", recipient="dave@example.com"
    ).exists()
    # The first driver can no longer report on the job it gave away.
    assert tap(client, token, job, "picked_up").status_code == 400
    # The new holder's driver reports through its own link, and the report is applied.
    sent = OutboundMessage.objects.filter(recipient="dave@example.com").latest("id").body
    new_token = re.search(r"/d/([\w-]+)", sent)[1]
    assert tap(client, new_token, new, "picked_up").status_code == 302
    event = TrackingEvent.objects.get(shipment=job.shipment, status="picked_up")
    assert (event.partner, event.custody, event.applied) == (allowed, new, True)


def test_too_many_taps_a_minute_are_slowed_down(client, job, settings):
    settings.BATON = {**settings.BATON, "DRIVER_LINK_TAPS_PER_MINUTE": 2}
    token = link_of(job)

    codes = [tap(client, token, job, "note", note=f"n{i}").status_code for i in range(3)]

    assert codes == [302, 302, 429]


def test_every_form_needs_its_csrf_token(job):
    client = Client(enforce_csrf_checks=True)

    response = tap(client, link_of(job), job, "picked_up")

    assert response.status_code == 403
    assert not TrackingEvent.objects.exists()


def test_an_agent_chase_sends_the_contractor_a_fresh_link(client, job, django_user_model):
    from contactcentre import services as console

    agent = django_user_model.objects.create_user("agent-dl")
    first = link_of(job)

    result = console.chase_holder(job.shipment, by_user=agent)

    second = link_of(job)
    assert second != first
    assert DriverLink.objects.filter(custody=job).count() == 2
    assert result.activity.summary == "Chased Two Men and a Van with a new driver link"
    assert Activity.objects.filter(
        shipment=job.shipment, kind="link_sent", summary__contains="chased"
    ).exists()
    assert client.get(f"/d/{second}").status_code == 200
    assert client.get(f"/d/{first}").status_code == 200  # the first link still works until it ends


def test_a_chase_by_e_mail_also_sends_a_driver_link_when_the_partner_uses_them(
    job, van_man, django_user_model
):
    from contactcentre import services as console

    van_man.ops_email = "office@van.example"
    van_man.save()
    agent = django_user_model.objects.create_user("agent-dl2")

    console.chase_holder(job.shipment, by_user=agent)

    assert OutboundMessage.objects.filter(purpose="partner.chase", recipient="office@van.example").exists()
    assert OutboundMessage.objects.filter(purpose="driver.link", shipment=job.shipment).count() == 2
