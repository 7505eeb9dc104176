"""Baton's ETA model in the database: learning stage durations, estimating open jobs, end to end."""

from datetime import timedelta
from itertools import count

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from contactcentre.models import Subscription
from partners import tasks
from partners.models import Partner, SilenceThreshold, StageDuration
from partners.prediction import EVERYONE, KIND, PARTNER, percentile
from partners.services import eta
from partners.services.sweep import run_sweep
from tests.factories import CustodyFactory, PartnerFactory, ShipmentFactory
from tracking import changes
from tracking.models import OutboundMessage, Shipment, TrackingEvent
from tracking.statuses import Status

pytestmark = pytest.mark.django_db
_keys = count()


def report(shipment, custody, status, at, *, applied=True):
    return TrackingEvent.objects.create(
        shipment=shipment,
        partner=custody.partner,
        custody=custody,
        status=status,
        occurred_at=at,
        received_at=at,
        effective_at=at,
        applied=applied,
        dedupe_key=f"k{next(_keys)}",
    )


def delivered_job(partner, *, picked_up_before, delivered_ago=timedelta(days=2)):
    """A delivered job: picked up `picked_up_before` before its delivery, `delivered_ago` from now."""
    delivered_at = timezone.now() - delivered_ago
    shipment = ShipmentFactory(status=Status.DELIVERED, status_at=delivered_at)
    custody = CustodyFactory(
        partner=partner, shipment=shipment, started_at=delivered_at - picked_up_before - timedelta(minutes=30)
    )
    report(shipment, custody, Status.ASSIGNED, custody.started_at)
    report(shipment, custody, Status.PICKED_UP, delivered_at - picked_up_before)
    report(shipment, custody, Status.DELIVERED, delivered_at)
    return shipment, custody


def history(partner, minutes):
    for value in minutes:
        delivered_job(partner, picked_up_before=timedelta(minutes=value))


def held(
    partner, *, status=Status.PICKED_UP, since_minutes=55, promised_in=65, heard_minutes_ago=5, **fields
):
    """An open job held by `partner`, in `status` for so long, promised so many minutes from now."""
    now = timezone.now()
    shipment = ShipmentFactory(
        status=status,
        status_at=now - timedelta(minutes=since_minutes),
        promised_from=None,
        promised_until=None if promised_in is None else now + timedelta(minutes=promised_in),
        last_heard_at=now - timedelta(minutes=heard_minutes_ago),
        **fields,
    )
    custody = CustodyFactory(partner=partner, shipment=shipment, started_at=now - timedelta(hours=3))
    shipment.current_custody = custody
    shipment.save()
    return shipment


def learned(partner=None, kind="", status=Status.PICKED_UP, p50=130, p90=200):
    return StageDuration.objects.create(
        partner=partner,
        partner_kind=kind,
        status=status,
        samples=50,
        p50_seconds=p50 * 60,
        p90_seconds=p90 * 60,
        computed_at=timezone.now(),
    )


def rows():
    return {
        (
            PARTNER if r.partner_id else (KIND if r.partner_kind else EVERYONE),
            r.partner_id,
            r.partner_kind,
            r.status,
        ): r
        for r in StageDuration.objects.all()
    }


# --- learning ---------------------------------------------------------------------------------------


def test_durations_are_learned_per_partner_per_kind_and_for_everyone():
    swift = PartnerFactory(name="Swift Couriers", kind=Partner.Kind.SUBCONTRACTOR)
    zoom = PartnerFactory(name="ZoomGig", kind=Partner.Kind.SUBCONTRACTOR)
    swift_minutes = [60 + 5 * n for n in range(20)]
    history(swift, swift_minutes)
    history(zoom, [200, 210, 220])

    result = eta.refresh_stage_durations()

    found = rows()
    own = found[(PARTNER, swift.pk, "", Status.PICKED_UP)]
    assert (own.samples, own.p50_seconds, own.p90_seconds) == (
        20,
        round(percentile([m * 60.0 for m in swift_minutes], 0.5)),
        round(percentile([m * 60.0 for m in swift_minutes], 0.9)),
    )
    assert (PARTNER, zoom.pk, "", Status.PICKED_UP) not in found  # 3 jobs: its kind stands in
    kind = found[(KIND, None, Partner.Kind.SUBCONTRACTOR, Status.PICKED_UP)]
    assert kind.samples == 23
    assert found[(EVERYONE, None, "", Status.ASSIGNED)].samples == 23
    assert not any(status == Status.DELIVERED for *_key, status in found)
    assert result.rows == len(found)


def test_old_deliveries_open_jobs_and_reports_not_applied_teach_nothing(settings):
    settings.BATON = {**settings.BATON, "ETA_MIN_SAMPLES": 1}
    partner = PartnerFactory()
    delivered_job(partner, picked_up_before=timedelta(hours=1), delivered_ago=timedelta(days=61))
    open_job = ShipmentFactory(status=Status.OUT_FOR_DELIVERY, status_at=timezone.now())
    report(open_job, CustodyFactory(partner=partner, shipment=open_job), Status.PICKED_UP, timezone.now())
    shipment, custody = delivered_job(partner, picked_up_before=timedelta(hours=1))
    report(shipment, custody, Status.EXCEPTION, shipment.status_at - timedelta(minutes=5), applied=False)
    report(shipment, custody, Status.ARRIVING, shipment.status_at + timedelta(minutes=5))  # after delivery

    eta.refresh_stage_durations()

    statuses = {key[3] for key in rows()}
    assert statuses == {Status.ASSIGNED, Status.PICKED_UP}
    assert rows()[(PARTNER, partner.pk, "", Status.PICKED_UP)].samples == 1


def test_a_job_handed_on_counts_for_each_holder_and_once_for_their_kind(settings):
    settings.BATON = {**settings.BATON, "ETA_MIN_SAMPLES": 1}
    fleet, courier = PartnerFactory(kind=Partner.Kind.FLEET), PartnerFactory(kind=Partner.Kind.FLEET)
    shipment, first = delivered_job(fleet, picked_up_before=timedelta(hours=3))
    first.ended_at = shipment.status_at - timedelta(hours=2)
    first.save()
    second = CustodyFactory(
        partner=courier, shipment=shipment, started_at=first.ended_at, handed_off_by=first
    )
    report(shipment, second, Status.PICKED_UP, shipment.status_at - timedelta(hours=2))

    eta.refresh_stage_durations()

    found = rows()
    assert found[(PARTNER, fleet.pk, "", Status.PICKED_UP)].p50_seconds == 3 * 3600
    assert found[(PARTNER, courier.pk, "", Status.PICKED_UP)].p50_seconds == 2 * 3600
    kind = found[(KIND, None, Partner.Kind.FLEET, Status.PICKED_UP)]
    assert (kind.samples, kind.p50_seconds) == (1, 3 * 3600)


def test_a_refresh_replaces_what_was_learned_before(settings):
    settings.BATON = {**settings.BATON, "ETA_MIN_SAMPLES": 1}
    partner = PartnerFactory()
    stale = learned(partner, status=Status.IN_TRANSIT)
    history(partner, [60])

    eta.refresh_stage_durations()

    assert not StageDuration.objects.filter(pk=stale.pk).exists()
    assert rows()[(PARTNER, partner.pk, "", Status.PICKED_UP)].p50_seconds == 3600


@pytest.mark.skipif(connection.vendor != "postgresql", reason="percentile_cont (CI's PostgreSQL pass)")
def test_on_postgresql_the_percentiles_in_sql_match_the_portable_path():
    swift, zoom = PartnerFactory(), PartnerFactory(kind=Partner.Kind.CARRIER)
    history(swift, [61, 67, 90, 95, 120, 121, 150, 300])
    history(zoom, [600, 601, 900])
    now = timezone.now()

    in_sql = eta._summaries_in_sql(now, 2)
    in_python = eta._summaries_in_python(now, 2)

    assert in_sql.keys() == in_python.keys()
    for key, summary in in_sql.items():
        assert summary.samples == in_python[key].samples
        assert summary.p50_seconds == pytest.approx(in_python[key].p50_seconds)
        assert summary.p90_seconds == pytest.approx(in_python[key].p90_seconds)


# --- estimating -------------------------------------------------------------------------------------


def test_an_open_job_gets_batons_window_and_risk_from_its_holders_history():
    swift = PartnerFactory(name="Swift Couriers")
    learned(swift)
    shipment = held(swift)

    result = eta.refresh_estimates()

    shipment.refresh_from_db()
    assert shipment.eta_source == "baton"
    # p50..p90 from pickup (a little later: it has not been delivered in its first 55 minutes), to the minute.
    reached = shipment.status_at
    assert reached + timedelta(minutes=130) <= shipment.eta_earliest <= reached + timedelta(minutes=132)
    assert reached + timedelta(minutes=200) <= shipment.eta_latest <= reached + timedelta(minutes=202)
    assert 0.5 < shipment.late_risk < 0.7
    assert shipment.late_risk_explanation.startswith(
        "Swift Couriers usually needs 2 h 10 min from pickup to delivery (9 in 10 within 3 h 20 min)"
    )
    assert (result.open, result.baton, result.at_risk, result.changed) == (1, 1, 1, 1)


def test_a_partner_with_little_history_is_judged_by_its_kind():
    zoom = PartnerFactory(name="ZoomGig", kind=Partner.Kind.SUBCONTRACTOR)
    learned(kind=Partner.Kind.SUBCONTRACTOR)
    shipment = held(zoom)

    eta.refresh_estimates()

    shipment.refresh_from_db()
    assert shipment.eta_source == "baton"
    assert shipment.late_risk_explanation.startswith(
        "ZoomGig has little history yet; subcontractors usually need"
    )


def test_a_partner_eta_ahead_is_shown_as_a_window_around_it():
    swift = PartnerFactory()
    learned(swift)
    eta_at = timezone.now() + timedelta(minutes=40)
    shipment = held(swift, eta=eta_at)

    eta.refresh_estimates()

    shipment.refresh_from_db()
    margin = timedelta(minutes=django_settings.BATON["PARTNER_ETA_MARGIN_MINUTES"])
    assert shipment.eta_source == "partner"
    assert (shipment.eta_earliest, shipment.eta_latest) == (eta_at - margin, eta_at + margin)
    assert shipment.late_risk is not None


def test_a_job_without_a_promised_window_gets_a_window_and_no_risk():
    swift = PartnerFactory()
    learned(swift)
    shipment = held(swift, promised_in=None, late_risk=0.9, late_risk_explanation="old")

    eta.refresh_estimates()

    shipment.refresh_from_db()
    assert shipment.eta_earliest is not None
    assert shipment.late_risk is None
    assert shipment.late_risk_explanation == ""


def test_silence_is_read_as_the_sweep_reads_it_and_raises_the_risk():
    patient, strict = PartnerFactory(), PartnerFactory()
    learned(kind=Partner.Kind.SUBCONTRACTOR)
    SilenceThreshold.objects.create(partner=strict, status=Status.PICKED_UP, minutes=20)
    calm, worried = held(patient, heard_minutes_ago=50), held(strict, heard_minutes_ago=50)

    eta.refresh_estimates()
    run_sweep()

    calm.refresh_from_db()
    worried.refresh_from_db()
    assert worried.late_risk > calm.late_risk
    assert worried.eta_latest > calm.eta_latest
    assert "longer than its 20 min limit" in worried.late_risk_explanation
    assert worried.alerts[0] == "stale_custodian"  # the sweep agrees that it is silent
    assert calm.alerts in ([], ["late_risk"])


def test_a_second_refresh_writes_nothing_and_no_refresh_publishes_anything():
    swift = PartnerFactory()
    learned(swift)
    held(swift)
    held(swift, eta=timezone.now() + timedelta(minutes=40))
    published = []
    changes.subscribe(listener := lambda shipment, change: published.append(change))
    try:
        first = eta.refresh_estimates()
        second = eta.refresh_estimates()
    finally:
        changes.unsubscribe(listener)

    assert (first.changed, second.changed) == (2, 0)
    assert published == []  # the sweep raises late_risk, and publishes that, once


def test_the_refresh_costs_the_same_queries_for_ten_jobs_or_forty():
    swift = PartnerFactory()
    learned(swift)

    def queries_for(number):
        Shipment.objects.all().delete()
        for _ in range(number):
            held(swift)
        with CaptureQueriesContext(connection) as captured:
            eta.refresh_estimates()
        return len(captured)

    assert queries_for(10) == queries_for(40)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks (CI's PostgreSQL pass)")
@pytest.mark.django_db(transaction=True)
def test_a_row_locked_elsewhere_is_skipped_not_waited_for_and_caught_up_next_time(second_connection):
    """The refresh never waits on the worker's or the sweep's row locks, so it cannot deadlock them."""
    swift = PartnerFactory()
    learned(swift)
    free, busy = held(swift), held(swift)
    with second_connection.transaction():
        second_connection.execute("SELECT id FROM tracking_shipment WHERE id = %s FOR UPDATE", [busy.pk])
        with connection.cursor() as cursor:  # a wait would fail the test rather than hang it
            cursor.execute("SET lock_timeout = '5s'")
        first = eta.refresh_estimates()
    free.refresh_from_db()
    busy.refresh_from_db()
    assert (first.open, first.changed) == (2, 1)
    assert free.eta_source == "baton"
    assert busy.eta_source == ""
    assert eta.refresh_estimates().changed == 1
    busy.refresh_from_db()
    assert busy.eta_source == "baton"


def test_finished_jobs_are_left_alone():
    swift = PartnerFactory()
    learned(swift)
    done = held(swift, status=Status.DELIVERED)

    assert eta.refresh_estimates().open == 0
    done.refresh_from_db()
    assert done.eta_source == ""


def test_beat_runs_both_refreshes_and_the_tasks_report_what_they_did():
    schedule = django_settings.CELERY_BEAT_SCHEDULE
    assert schedule["refresh-stage-durations"]["task"] == "partners.tasks.refresh_stage_durations"
    assert schedule["refresh-estimates"]["task"] == "partners.tasks.refresh_estimates"
    swift = PartnerFactory()
    history(swift, [60 + n for n in range(20)])
    held(swift)

    assert tasks.refresh_stage_durations.delay().get() > 0
    assert "1 open shipments: 1 with Baton's window" in tasks.refresh_estimates.delay().get()


# --- end to end -------------------------------------------------------------------------------------


def test_history_to_a_running_late_page_and_message(client, settings):
    settings.BATON = {**settings.BATON, "QUIET_HOURS_START": 0, "QUIET_HOURS_END": 0}
    swift = PartnerFactory(name="Swift Couriers")
    history(swift, [110 + 2 * n for n in range(25)])  # about 2 h from pickup to delivery
    shipment = held(swift, since_minutes=90, promised_in=10)  # 1 h 40 min allowed: it will be late
    shipment.has_subscribers = True
    shipment.save(update_fields=["has_subscribers"])
    Subscription.objects.create(
        shipment=shipment, channel="email", address="grace@example.com", source="page"
    )

    eta.refresh_stage_durations()
    eta.refresh_estimates()
    run_sweep()

    shipment.refresh_from_db()
    assert shipment.eta_source == "baton"
    assert shipment.late_risk >= 0.5
    assert shipment.alerts == ["late_risk"]
    body = client.get(f"/api/public/v1/track/{shipment.token}").json()
    start = timezone.localtime(shipment.eta_earliest).strftime("%H:%M")
    end = timezone.localtime(shipment.eta_latest).strftime("%H:%M")
    assert body["running_late"] is True
    assert body["estimate_source"] == "baton"
    assert body["late_text"] == f"Running late: now expected between {start} and {end}."
    assert "Running late: now expected between" in client.get(f"/t/{shipment.token}").content.decode()
    [message] = OutboundMessage.objects.filter(purpose="customer.running_late")
    assert message.shipment_id == shipment.pk


def test_a_likely_on_time_job_is_not_called_late_although_its_window_ends_after_the_promise(client):
    swift = PartnerFactory(name="Swift Couriers")
    learned(swift)
    shipment = held(swift, since_minutes=5, promised_in=150)  # p90 ends 3 h 15 min from now

    eta.refresh_estimates()
    run_sweep()

    shipment.refresh_from_db()
    assert shipment.eta_latest > shipment.promised_until
    assert shipment.late_risk < 0.5
    body = client.get(f"/api/public/v1/track/{shipment.token}").json()
    assert body["running_late"] is False
    assert body["estimate_source"] == "baton"


@pytest.mark.django_db(transaction=True)
def test_the_demo_leaves_baton_windows_and_late_risks(settings):
    from hub.demo import seed_day

    settings.BATON = {**settings.BATON, "ETA_MIN_SAMPLES": 3}  # a small demo delivers a few jobs per stage
    seed_day(shipments=40, seed=7)

    open_jobs = Shipment.objects.open()
    assert open_jobs.filter(eta_source="baton").exists()
    assert open_jobs.filter(late_risk__isnull=False).exists()
    assert StageDuration.objects.exists()
