"""The ETA model's math: percentiles, log-normal windows and risks, silence, explanations (no database)."""

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from partners.models import SilenceThreshold
from partners.prediction import (
    EVERYONE,
    KIND,
    PARTNER,
    Job,
    Stage,
    Summary,
    choose_stage,
    duration_words,
    estimate,
    group_durations,
    percentile,
    silence_limit,
    summarise,
    threshold_candidates,
)

# A pure function's own clock: any moment does (the real clock is never read here).
NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
MARGIN = timedelta(minutes=15)
HOUR = 3600
SWIFT = Stage(p50_seconds=2 * HOUR + 600, p90_seconds=3 * HOUR + 1200, samples=80, who="Swift Couriers")


def minutes(value):
    return timedelta(minutes=value)


def picked_up(ago, *, promised_in=None, **fields):
    return Job(
        status="picked_up",
        status_at=NOW - minutes(ago),
        promised_until=None if promised_in is None else NOW + minutes(promised_in),
        holder="Swift Couriers",
        **fields,
    )


def test_percentiles_interpolate_like_postgresql_percentile_cont():
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.9) == pytest.approx(3.7)
    assert percentile([7.0], 0.9) == 7.0


def test_groups_with_too_few_jobs_are_not_learned():
    learned = summarise({"busy": [60.0 * n for n in range(1, 21)], "thin": [60.0, 120.0]}, min_samples=20)

    assert set(learned) == {"busy"}
    assert learned["busy"].samples == 20
    assert learned["busy"].p50_seconds == 630.0


def test_a_job_reaching_a_status_under_two_holders_counts_for_each_and_once_for_its_kind():
    delivered = NOW
    rows = [
        {"job": 1, "stage": "in_transit", "holder": 10, "holder_kind": "subcontractor",
         "reached": delivered - minutes(90), "delivered": delivered},
        {"job": 1, "stage": "in_transit", "holder": 11, "holder_kind": "subcontractor",
         "reached": delivered - minutes(60), "delivered": delivered},
    ]  # fmt: skip

    durations = group_durations(rows)

    assert durations[(PARTNER, 10, "", "in_transit")] == [5400.0]
    assert durations[(PARTNER, 11, "", "in_transit")] == [3600.0]
    assert durations[(KIND, None, "subcontractor", "in_transit")] == [5400.0]
    assert durations[(EVERYONE, None, "", "in_transit")] == [5400.0]


def test_the_holders_own_history_wins_then_its_kind_then_everyone():
    learned = {
        (PARTNER, 1, "", "picked_up"): Summary(30, 600, 900),
        (KIND, None, "subcontractor", "picked_up"): Summary(90, 700, 1000),
        (EVERYONE, None, "", "picked_up"): Summary(300, 800, 1100),
        (EVERYONE, None, "", "assigned"): Summary(300, 1800, 2400),
    }

    own = choose_stage(learned, partner_id=1, kind="subcontractor", status="picked_up", holder="Swift")
    kind = choose_stage(learned, partner_id=2, kind="subcontractor", status="picked_up", holder="Zoom")
    everyone = choose_stage(learned, partner_id=2, kind="subcontractor", status="assigned", holder="Zoom")

    assert (own.p50_seconds, own.who, own.scope) == (600, "Swift", PARTNER)
    assert (kind.p50_seconds, kind.who, kind.scope) == (700, "Subcontractors", KIND)
    assert (everyone.p50_seconds, everyone.scope) == (1800, EVERYONE)
    assert choose_stage(learned, partner_id=2, kind="fleet", status="in_transit", holder="Zoom") is None


def test_the_fitted_log_normal_has_the_learned_median_and_90th_percentile():
    assert SWIFT.survival(SWIFT.p50_seconds) == pytest.approx(0.5)
    assert SWIFT.survival(SWIFT.p90_seconds) == pytest.approx(0.1)
    assert SWIFT.quantile_given(0.5, 0) == pytest.approx(SWIFT.p50_seconds)
    assert SWIFT.quantile_given(0.9, 0) == pytest.approx(SWIFT.p90_seconds)


def test_a_young_job_gets_the_plain_p50_to_p90_window_from_when_it_reached_its_status():
    job = picked_up(5)

    found = estimate(job, SWIFT, now=NOW, partner_margin=MARGIN)

    assert found.source == "baton"
    assert found.earliest == NOW - minutes(5) + minutes(130)
    assert found.latest == NOW - minutes(5) + minutes(200)
    assert found.late_risk is None  # no promised window, no risk
    assert found.explanation == ""


def test_an_overdue_job_gets_a_window_that_moves_forward_from_now():
    job = picked_up(5 * 60)  # far beyond its 3 h 20 min p90

    found = estimate(job, SWIFT, now=NOW, partner_margin=MARGIN)

    assert NOW < found.earliest < found.latest
    # The jobs that lasted this long needed a while more, not the usual 2 h 10 min from now.
    assert found.earliest - NOW < minutes(130)


def test_late_risk_is_the_share_of_jobs_that_lasted_so_long_and_still_missed_the_deadline():
    job = picked_up(55, promised_in=65)  # 2 h allowed after pickup, 1 h 5 min left

    found = estimate(job, SWIFT, now=NOW, partner_margin=MARGIN)

    expected = SWIFT.survival(120 * 60) / SWIFT.survival(55 * 60)
    assert found.late_risk == round(expected, 2)
    assert 0.5 < found.late_risk < 0.7


def test_the_risk_grows_as_the_deadline_nears_without_delivery():
    risks = [
        estimate(picked_up(ago, promised_in=180 - ago), SWIFT, now=NOW, partner_margin=MARGIN).late_risk
        for ago in (0, 60, 120, 170, 178)
    ]

    assert risks == sorted(risks)
    assert risks[0] < 0.5 < risks[-1]


def test_a_passed_promise_is_certainly_late_and_says_so():
    job = picked_up(200, promised_in=-10)

    found = estimate(job, SWIFT, now=NOW, partner_margin=MARGIN)

    assert found.late_risk == 1.0
    assert found.explanation == "The promised window ended at 13:50 and the job is not delivered yet."


def test_the_explanation_names_the_holder_its_usual_time_and_the_promise():
    job = picked_up(55, promised_in=65)

    found = estimate(job, SWIFT, now=NOW, partner_margin=MARGIN)

    assert found.explanation == (
        "Swift Couriers usually needs 2 h 10 min from pickup to delivery (9 in 10 within 3 h 20 min); "
        "this job was picked up at 13:05 and is promised by 15:05, 2 h after."
    )


def test_the_explanation_says_when_the_kinds_history_stands_in_for_the_holders():
    kind = replace(SWIFT, who="Subcontractors", scope=KIND)

    found = estimate(picked_up(55, promised_in=65), kind, now=NOW, partner_margin=MARGIN)

    assert found.explanation.startswith(
        "Swift Couriers has little history yet; subcontractors usually need 2 h"
    )


def test_silence_beyond_the_limit_raises_the_risk_and_pushes_the_window_later():
    heard = picked_up(55, promised_in=65, heard_at=NOW - minutes(50), silence_limit=minutes(120))
    silent = replace(heard, silence_limit=minutes(20))

    calm = estimate(heard, SWIFT, now=NOW, partner_margin=MARGIN)
    worried = estimate(silent, SWIFT, now=NOW, partner_margin=MARGIN)

    assert worried.late_risk > calm.late_risk
    assert worried.earliest > calm.earliest
    assert worried.latest > calm.latest
    assert worried.explanation.endswith(
        "Swift Couriers has not reported since 13:10, longer than its 20 min limit: "
        "Baton assumes the job has not moved since 13:30."
    )


def test_a_partner_eta_still_ahead_gives_the_window_and_the_stage_gives_the_risk():
    job = picked_up(55, promised_in=65, partner_eta=NOW + minutes(40))

    found = estimate(job, SWIFT, now=NOW, partner_margin=MARGIN)

    assert found.source == "partner"
    assert (found.earliest, found.latest) == (NOW + minutes(25), NOW + minutes(55))
    assert (
        found.late_risk
        == estimate(replace(job, partner_eta=None), SWIFT, now=NOW, partner_margin=MARGIN).late_risk
    )


def test_a_passed_partner_eta_gives_way_to_batons_window():
    job = picked_up(55, promised_in=65, partner_eta=NOW - minutes(10))

    found = estimate(job, SWIFT, now=NOW, partner_margin=MARGIN)

    assert found.source == "baton"
    assert found.earliest > NOW


def test_without_history_a_partner_eta_after_the_promise_makes_the_risk():
    late = picked_up(55, promised_in=30, partner_eta=NOW + minutes(50))
    early = replace(late, partner_eta=NOW + minutes(5))

    found = estimate(late, None, now=NOW, partner_margin=MARGIN)

    assert found.late_risk > 0.9
    assert estimate(early, None, now=NOW, partner_margin=MARGIN).late_risk < 0.1
    assert found.explanation == (
        "Swift Couriers expects to deliver at 14:50, after the promised 14:30; "
        "Baton has too little history to judge."
    )


def test_without_history_or_eta_there_is_no_window_and_no_risk():
    found = estimate(picked_up(55, promised_in=30), None, now=NOW, partner_margin=MARGIN)

    assert (found.earliest, found.latest, found.source, found.late_risk) == (None, None, "", None)


@given(
    p50=st.floats(min_value=60, max_value=3 * 24 * HOUR),
    ratio=st.floats(min_value=1.0, max_value=20.0),
    elapsed=st.floats(min_value=0, max_value=30 * 24 * HOUR),
    left=st.floats(min_value=60, max_value=3 * 24 * HOUR),
    silent=st.floats(min_value=0, max_value=2 * 24 * HOUR),
)
def test_any_estimate_is_a_window_after_now_and_a_probability_that_silence_only_raises(
    p50, ratio, elapsed, left, silent
):
    stage = Stage(p50, p50 * ratio, 50, "Swift Couriers")
    job = Job(
        status="out_for_delivery",
        status_at=NOW - timedelta(seconds=elapsed),
        promised_until=NOW + timedelta(seconds=left),
        holder="Swift Couriers",
        heard_at=NOW - timedelta(seconds=silent),
        silence_limit=minutes(45),
    )

    found = estimate(job, stage, now=NOW, partner_margin=MARGIN)
    deaf = estimate(replace(job, silence_limit=None), stage, now=NOW, partner_margin=MARGIN)

    assert NOW <= found.earliest <= found.latest
    assert 0.0 <= found.late_risk <= 1.0
    assert found.late_risk >= deaf.late_risk
    assert not math.isnan(found.late_risk)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(30, "1 min"), (45 * 60, "45 min"), (2 * HOUR + 600, "2 h 10 min"), (65 * 60 + 100, "1 h 5 min"),
     (3 * HOUR, "3 h"), (26 * HOUR, "26 h"), (76 * HOUR, "3 days 4 h")],
)  # fmt: skip
def test_durations_read_like_an_agent_would_say_them(seconds, words):
    assert duration_words(seconds) == words


@dataclass
class Row:
    partner_id: int | None = None
    partner_kind: str = ""
    status: str = ""
    minutes: int = 0


def limit(rows, *, partner_id=1, kind="subcontractor", status="out_for_delivery", unacknowledged=False):
    candidates = threshold_candidates(rows, unacknowledged=unacknowledged)
    return silence_limit(
        candidates,
        partner_id=partner_id,
        partner_kind=kind,
        status=status,
        unacknowledged=unacknowledged,
        default_minutes=120,
    )


def test_silence_limits_follow_the_sweeps_precedence():
    rows = [
        Row(None, "", "", 120),
        Row(None, "subcontractor", "", 90),
        Row(None, "subcontractor", "out_for_delivery", 45),
        Row(None, "", "unacknowledged", 100),
        Row(7, "", "", 200),
    ]

    assert limit(rows) == minutes(45)  # kind and status
    assert limit(rows, status="picked_up") == minutes(90)  # kind, any status
    assert limit(rows, kind="fleet") == minutes(120)  # everyone
    assert limit(rows, partner_id=7) == minutes(200)  # the partner's own row beats its kind's
    # Never reported: "unacknowledged" rows, but a kind's any-status row is still more specific.
    assert limit(rows, unacknowledged=True) == minutes(90)
    assert limit(rows, kind="fleet", unacknowledged=True) == minutes(100)
    assert limit([], kind="fleet") == minutes(120)  # the setting when no row applies


def test_the_unacknowledged_marker_is_the_models():
    assert SilenceThreshold.UNACKNOWLEDGED == "unacknowledged"
