from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from partners import scorecards
from partners.models import ANY, InboundMessage, PartnerDayFigures
from partners.services import scorecards as figures
from tests.factories import CustodyFactory, PartnerFactory, ShipmentFactory
from tracking.models import Activity, TrackingEvent

LONDON = ZoneInfo("Europe/London")
DAY = datetime(2026, 3, 10, tzinfo=LONDON).date()  # GMT: UTC hours are London hours on SQLite too


def at(hour, minute=0):
    return datetime(2026, 3, 10, hour, minute, tzinfo=LONDON)


def event(custody, status, occurred, *, latency_s=10, kind="status", proof=None, flags=(), applied=True):
    return TrackingEvent.objects.create(
        shipment=custody.shipment,
        partner=custody.partner,
        custody=custody,
        kind=kind,
        status=status,
        occurred_at=occurred,
        received_at=occurred + timedelta(seconds=latency_s),
        proof=proof,
        flags=list(flags),
        applied=applied,
        dedupe_key=f"{custody.pk}-{status}-{occurred.isoformat()}-{kind}",
    )


@pytest.fixture
def day_of_work(db):
    swift, zoom = PartnerFactory(slug="swift"), PartnerFactory(slug="zoom")
    # Swift: on time, first attempt, proof, reports every 20 minutes.
    one = ShipmentFactory(postcode="N1 0PQ", promised_from=at(9), promised_until=at(11))
    job = CustodyFactory(shipment=one, partner=swift, partner_reference="S1", started_at=at(8))
    event(job, "picked_up", at(8, 20))
    event(job, "out_for_delivery", at(8, 40), latency_s=100)
    event(job, "delivered", at(9, 0), proof={"signed_by": "A"}, flags=["conflict"])
    # Swift: failed first, delivered late, silent 3 h after pickup; a case while it held the job.
    two = ShipmentFactory(postcode="N1 1AA", promised_from=at(10), promised_until=at(12))
    late = CustodyFactory(shipment=two, partner=swift, partner_reference="S2", started_at=at(8))
    event(late, "picked_up", at(8, 10))
    event(late, "attempt_failed", at(11, 10), latency_s=4000)
    event(late, "delivered", at(13, 0))
    Activity.objects.create(
        shipment=two, kind="case_opened", actor="customer", summary="x", occurred_at=at(12)
    )
    # Zoom: took a job and handed it on to Swift without a word.
    three = ShipmentFactory(postcode="E8 4RP", promised_from=at(14), promised_until=at(16))
    handed = CustodyFactory(
        shipment=three, partner=zoom, partner_reference="Z1", started_at=at(13), ended_at=at(14)
    )
    CustodyFactory(
        shipment=three, partner=swift, partner_reference="S3", started_at=at(14), handed_off_by=handed
    )
    InboundMessage.objects.create(
        partner=zoom, channel="api", body=b"{}", content_hash="x", received_at=at(15), state="unmatched"
    )
    InboundMessage.objects.create(
        partner=zoom, channel="api", body=b"{}", content_hash="y", received_at=at(15), state="processed"
    )
    return swift, zoom


def test_a_day_is_materialised_into_counts_per_partner_area_and_band(day_of_work):
    written = figures.materialise_day(DAY, now=at(23))
    assert written == PartnerDayFigures.objects.count()
    n1 = PartnerDayFigures.objects.get(partner__slug="swift", area="N1", band="morning")
    assert (n1.jobs, n1.delivered, n1.with_window, n1.on_time) == (2, 2, 2, 1)
    assert (n1.attempted, n1.first_attempt, n1.with_proof) == (2, 1, 1)
    assert n1.cases == 1
    assert (n1.events, n1.conflicts) == (6, 1)
    # Gaps beyond 30 minutes: 8:10 -> 11:10 is 180 min, 11:10 -> 13:00 is 110 min: 150 + 80 silent.
    assert n1.silent_seconds == (150 + 80) * 60
    assert n1.lat_0 == 0
    assert n1.lat_1 == 4
    assert n1.lat_4 == 1  # 100 s
    assert n1.lat_9 == 1  # 4000 s
    zoom = PartnerDayFigures.objects.get(partner__slug="zoom", area="E8")
    assert (zoom.jobs, zoom.handed_on, zoom.band) == (1, 1, "afternoon")
    assert zoom.silent_seconds == 30 * 60  # an hour held in silence, less the grace
    messages = PartnerDayFigures.objects.get(partner__slug="zoom", area="")
    assert (messages.messages, messages.unmatched) == (2, 1)


def test_materialising_again_replaces_the_day(day_of_work):
    figures.materialise_day(DAY, now=at(23))
    figures.materialise_day(DAY, now=at(23))
    assert PartnerDayFigures.objects.filter(partner__slug="swift", area="N1").count() == 1


def test_totals_and_the_recommendation_read_the_materialised_rows(day_of_work):
    figures.materialise_day(DAY, now=at(23))
    query = figures.ScorecardQuery(days=7, until=DAY)
    totals = figures.partner_totals(query)
    swift = totals["swift"]
    assert swift.jobs == 3
    assert swift.on_time_rate == 0.5
    assert swift.first_attempt_rate == 0.5
    assert swift.pod_coverage == 0.5
    assert swift.latency_p50 == 15
    assert swift.latency_p90 == 7200
    assert totals["zoom"].unmatched_rate == 0.5
    ranked = figures.recommend_partner(area="N1", band="morning", days=7, until=DAY)
    assert [c.partner for c in ranked] == ["swift"]
    assert not ranked[0].enough_data
    assert "of 2 delivered with a window" in ranked[0].reasons[0]
    rows = list(figures.csv_rows(query))
    assert rows[0][:3] == ["partner", "period_start", "jobs"]
    assert [r[0] for r in rows[1:]] == ["swift", "zoom"]


def test_a_case_a_baton_rule_opened_is_not_a_contact_the_partner_caused(day_of_work):
    two = TrackingEvent.objects.get(custody__partner_reference="S2", status="delivered").shipment
    Activity.objects.create(
        shipment=two, kind="case_opened", actor="rule", summary="x", occurred_at=at(12, 30)
    )
    figures.materialise_day(DAY, now=at(23))
    assert PartnerDayFigures.objects.get(partner__slug="swift", area="N1", band="morning").cases == 1


def test_every_selection_reads_rows_that_add_up_to_the_same_figures(day_of_work):
    swift, _ = day_of_work
    # A job with no postcode has no area: it counts for every area, never for one.
    nowhere = ShipmentFactory(postcode="", promised_from=at(9), promised_until=at(11))
    CustodyFactory(shipment=nowhere, partner=swift, partner_reference="S4", started_at=at(8))
    figures.materialise_day(DAY, now=at(23))

    def jobs(**selection):
        return figures.partner_totals(figures.ScorecardQuery(days=1, until=DAY, **selection))["swift"].jobs

    assert jobs() == 4
    assert jobs(band="morning") == 3  # two in N1 and the one with no area
    assert jobs(band="afternoon") == 1
    assert jobs(area="N1") == 2
    assert jobs(area="N1", band="morning") == 2
    assert (
        figures.partner_totals(figures.ScorecardQuery(days=1, until=DAY, area="N1"))["zoom"].unmatched_rate
        == 0.5
    )
    # Every area at once is one row per partner and day, however many districts there are.
    assert PartnerDayFigures.objects.filter(area=ANY, band=ANY).count() == 2


def test_latency_percentiles_come_from_the_histogram():
    histogram = [0] * 12
    histogram[1], histogram[5] = 9, 1
    assert scorecards.latency_percentile(histogram, 0.5) == 15
    assert scorecards.latency_percentile(histogram, 0.9) == 15
    assert scorecards.latency_percentile(histogram, 0.95) == 300
    assert scorecards.latency_percentile([0] * 12, 0.5) is None
    assert scorecards.latency_percentile([0] * 11 + [1], 0.5) == -1


def test_a_partner_with_too_few_jobs_is_not_recommended_first():
    good_but_new = scorecards.Totals(jobs=3, with_window=3, on_time=3, attempted=3, first_attempt=3)
    solid = scorecards.Totals(jobs=200, with_window=200, on_time=170, attempted=200, first_attempt=180)
    poor = scorecards.Totals(
        jobs=200, with_window=200, on_time=100, attempted=200, first_attempt=120, cases=30
    )
    ranked = scorecards.recommend({"new": good_but_new, "solid": solid, "poor": poor})
    assert [c.partner for c in ranked] == ["solid", "poor", "new"]
    assert ranked[0].score > ranked[1].score
