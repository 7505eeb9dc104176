"""The backtest: synthetic history with known lateness, where the ETA model must beat the partner's ETA."""

from io import StringIO

import pytest
from django.core.management import call_command

from partners.backtest import make_history, run_backtest
from partners.models import SilenceThreshold

pytestmark = pytest.mark.django_db  # the silence thresholds are the seeded rows


def thresholds():
    return list(SilenceThreshold.objects.all())


def test_the_model_beats_the_partners_eta_on_a_small_history():
    result = run_backtest(seed=3, days=30, per_day=60, thresholds=thresholds())

    assert result.beats_baseline
    for horizon in result.horizons:
        assert horizon.open_jobs > 100
        assert 0 < horizon.late_jobs < horizon.open_jobs
        assert horizon.model.brier < horizon.baseline.brier
        assert horizon.model.recall > horizon.baseline.recall


def test_the_same_seed_tells_the_same_story_and_another_seed_another():
    first = run_backtest(seed=5, days=12, per_day=40, thresholds=thresholds()).lines()

    assert run_backtest(seed=5, days=12, per_day=40, thresholds=thresholds()).lines() == first
    assert run_backtest(seed=6, days=12, per_day=40, thresholds=thresholds()).lines() != first


def test_the_synthetic_world_has_hand_offs_silences_and_failed_attempts():
    jobs = make_history(days=10, per_day=60, seed=2)

    assert any(len(job.custody) > 1 for job in jobs)
    assert any(report.status == "attempt_failed" for job in jobs for report in job.reports)
    silent = [
        job for job in jobs if any((r.received - r.occurred).total_seconds() > 600 for r in job.reports)
    ]
    assert silent  # reports held back by a silent spell arrive late
    assert 0.1 < sum(job.late for job in jobs) / len(jobs) < 0.4


def test_the_command_prints_precision_recall_and_brier_beside_the_baseline():
    out = StringIO()

    call_command("backtest", "--days", "12", "--per-day", "40", "--seed", "4", stdout=out)

    text = out.getvalue()
    assert "2 h before the window closes" in text
    assert "30 min before the window closes" in text
    assert "precision" in text
    assert "Brier" in text
    assert "baseline (partner ETA)" in text
