"""The sweep: flags that grow true with time are computed set-based and stored, and clear with their cause."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from partners.models import Partner, SilenceThreshold
from partners.services.sweep import run_sweep
from tests.factories import CustodyFactory, PartnerFactory, ShipmentFactory
from tracking import changes
from tracking.models import Shipment
from tracking.statuses import Status

pytestmark = pytest.mark.django_db


def held(
    partner, *, status=Status.OUT_FOR_DELIVERY, heard_minutes_ago=None, assigned_minutes_ago=600, **fields
):
    """An open shipment held by `partner`, last heard from so many minutes ago (None: never)."""
    now = timezone.now()
    shipment = ShipmentFactory(status=status, **fields)
    custody = CustodyFactory(
        partner=partner, shipment=shipment, started_at=now - timedelta(minutes=assigned_minutes_ago)
    )
    shipment.current_custody = custody
    shipment.last_heard_at = None if heard_minutes_ago is None else now - timedelta(minutes=heard_minutes_ago)
    shipment.save()
    return shipment


@pytest.fixture
def no_rules():
    """Without operations' rules listening: each action they take costs queries per shipment acted on."""
    from contactcentre import proactive

    changes.unsubscribe(proactive.on_shipment_change)
    yield
    changes.subscribe(proactive.on_shipment_change)


def alerts(shipment):
    shipment.refresh_from_db()
    return shipment.alerts


def test_thresholds_per_kind_and_status_from_the_seeded_defaults():
    gig = PartnerFactory(kind=Partner.Kind.SUBCONTRACTOR)
    carrier = PartnerFactory(kind=Partner.Kind.CARRIER)
    gig_silent = held(gig, heard_minutes_ago=50)  # 45 min while out for delivery
    gig_fine = held(gig, heard_minutes_ago=40)
    carrier_fine = held(carrier, status=Status.IN_TRANSIT, heard_minutes_ago=25 * 60)  # 26 h in transit
    carrier_silent = held(carrier, status=Status.IN_TRANSIT, heard_minutes_ago=27 * 60)

    result = run_sweep()

    assert alerts(gig_silent) == ["stale_custodian"]
    assert alerts(carrier_silent) == ["stale_custodian"]
    assert alerts(gig_fine) == alerts(carrier_fine) == []
    assert result.counts["stale_custodian"] == 2
    assert result.raised["stale_custodian"] == 2


def test_a_partners_own_threshold_overrides_its_kind():
    patient = PartnerFactory(kind=Partner.Kind.SUBCONTRACTOR)
    SilenceThreshold.objects.create(partner=patient, status=Status.OUT_FOR_DELIVERY, minutes=90)
    other = PartnerFactory(kind=Partner.Kind.SUBCONTRACTOR)
    overridden = held(patient, heard_minutes_ago=60)
    default = held(other, heard_minutes_ago=60)

    run_sweep()

    assert alerts(overridden) == []
    assert alerts(default) == ["stale_custodian"]


def test_unacknowledged_when_the_new_holder_never_reported():
    partner = PartnerFactory(kind=Partner.Kind.SUBCONTRACTOR)
    late = held(partner, status=Status.ASSIGNED, heard_minutes_ago=None, assigned_minutes_ago=130)
    early = held(partner, status=Status.ASSIGNED, heard_minutes_ago=None, assigned_minutes_ago=100)

    run_sweep()

    assert alerts(late) == ["unacknowledged"]
    assert alerts(early) == []


def test_eta_passed_and_late_risk_and_finished_jobs_carry_nothing():
    partner = PartnerFactory()
    now = timezone.now()
    eta_gone = held(partner, heard_minutes_ago=5, eta=now - timedelta(minutes=1))
    baton_window_gone = held(partner, heard_minutes_ago=5, eta_latest=now - timedelta(minutes=1))
    risky = held(partner, heard_minutes_ago=5, late_risk=0.7)
    calm = held(partner, heard_minutes_ago=5, late_risk=0.2, eta=now + timedelta(hours=1))
    delivered = held(partner, status=Status.DELIVERED, heard_minutes_ago=600, eta=now - timedelta(hours=3))

    run_sweep()

    assert alerts(eta_gone) == ["eta_passed"]
    assert alerts(baton_window_gone) == ["eta_passed"]
    assert alerts(risky) == ["late_risk"]
    assert alerts(calm) == []
    assert alerts(delivered) == []


def test_a_flag_clears_when_its_cause_clears_and_a_finished_job_drops_its_alerts():
    partner = PartnerFactory()
    silent = held(partner, heard_minutes_ago=60)
    run_sweep()
    assert alerts(silent) == ["stale_custodian"]

    Shipment.objects.filter(pk=silent.pk).update(last_heard_at=timezone.now())
    result = run_sweep()
    assert alerts(silent) == []
    assert result.cleared == {"stale_custodian": 1}

    Shipment.objects.filter(pk=silent.pk).update(
        alerts=["stale_custodian"], status=Status.DELIVERED, last_heard_at=timezone.now() - timedelta(hours=5)
    )
    run_sweep()
    assert alerts(silent) == []


def test_a_second_pass_changes_nothing_and_publishes_nothing():
    partner = PartnerFactory()
    held(partner, heard_minutes_ago=60)
    published = []
    changes.subscribe(listener := lambda shipment, change: published.append(change.flags_raised))
    try:
        run_sweep()
        assert published == [frozenset({"stale_custodian"})]
        second = run_sweep()
    finally:
        changes.unsubscribe(listener)
    assert published == [frozenset({"stale_custodian"})]
    assert second.changed == 0


def test_the_sweep_costs_the_same_queries_for_ten_shipments_or_forty(no_rules):
    partner = PartnerFactory()

    def queries_for(count):
        Shipment.objects.all().delete()
        for _ in range(count):
            held(partner, heard_minutes_ago=60)
        with CaptureQueriesContext(connection) as captured:
            run_sweep()
        return len(captured)

    queries_for(3)  # warm up what is cached once per process
    assert queries_for(10) == queries_for(40)


def test_list_filter_and_detail_agree_on_a_silent_holder(agent_client):
    partner = PartnerFactory()
    silent = held(partner, heard_minutes_ago=60)
    held(partner, heard_minutes_ago=5)
    run_sweep()

    listed = agent_client.get("/api/v1/shipments", {"flag": "stale_custodian"}).json()
    detail = agent_client.get(f"/api/v1/shipments/{silent.reference}").json()
    timeline = agent_client.get(f"/api/v1/shipments/{silent.reference}/timeline").json()

    assert [row["reference"] for row in listed["results"]] == [silent.reference]
    assert "stale_custodian" in listed["results"][0]["flags"]
    assert "stale_custodian" in detail["flags"]
    assert "stale_custodian" in timeline["flags"]


def test_a_report_from_the_holder_clears_its_silence_at_once(
    partner_client, django_capture_on_commit_callbacks
):
    partner = PartnerFactory(slug="quiet")
    silent = held(partner, heard_minutes_ago=60)
    run_sweep()
    assert alerts(silent) == ["stale_custodian"]

    with django_capture_on_commit_callbacks(execute=True):
        response = partner_client(partner).post(
            "/api/partner/v1/events",
            {
                "reference": silent.current_custody.partner_reference,
                "status": "out_for_delivery",
                "occurred_at": timezone.now().isoformat(),
            },
            format="json",
        )
    assert response.status_code == 202, response.content
    assert alerts(silent) == []


def test_the_command_prints_counts():
    from io import StringIO

    held(PartnerFactory(), heard_minutes_ago=60)
    out = StringIO()
    call_command("sweep", stdout=out)
    assert "Holder silent (stale_custodian): 1 open shipments" in out.getvalue()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"partner_kind": "fleet", "status": "", "minutes": 0}, "at least one minute"),
        ({"partner_kind": "fleet", "status": "delivered", "minutes": 10}, "open status"),
    ],
)
def test_thresholds_are_validated(fields, message):
    with pytest.raises(ValidationError, match=message):
        SilenceThreshold(**fields).full_clean()


def test_a_threshold_names_a_partner_or_a_kind_not_both():
    threshold = SilenceThreshold(partner=PartnerFactory(), partner_kind="fleet", minutes=5)
    with pytest.raises(ValidationError, match="not both"):
        threshold.full_clean()


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the sweep's SQL on PostgreSQL (CI's second pass)"
)
def test_on_postgresql_the_sweep_reads_every_open_shipment_in_one_statement():
    partner = PartnerFactory()
    for minutes in (5, 60, 600):
        held(partner, heard_minutes_ago=minutes)
    with CaptureQueriesContext(connection) as captured:
        result = run_sweep()
    # One read decides every flag of every open shipment (streamed through a server-side cursor).
    reads = [q["sql"] for q in captured if not q["sql"].startswith("UPDATE") and "CASE WHEN" in q["sql"]]
    assert len(reads) == 1
    assert 'FROM "tracking_shipment"' in reads[0]
    assert result.counts["stale_custodian"] == 2


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's advisory lock (CI's second pass)")
def test_a_pass_that_finds_another_running_does_nothing(second_connection):
    from partners.services.sweep import SWEEP_LOCK_KEY

    silent = held(PartnerFactory(), heard_minutes_ago=60)
    second_connection.execute("SELECT pg_advisory_lock(%s)", [SWEEP_LOCK_KEY])
    skipped = run_sweep()
    second_connection.execute("SELECT pg_advisory_unlock(%s)", [SWEEP_LOCK_KEY])
    assert skipped.skipped
    assert alerts(silent) == []
    assert run_sweep().changed == 1
    assert alerts(silent) == ["stale_custodian"]
