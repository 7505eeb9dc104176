"""The guard against date-bound tests: `--clock-ahead-days` moves the whole session's clock."""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_suite_can_run_with_the_clock_moved_a_year_ahead(request):
    # When this session itself runs ahead (CI's second pass), the real time is that much earlier.
    real_now = datetime.now(UTC) - timedelta(days=request.config.getoption("--clock-ahead-days"))
    env = {**os.environ, "PROBE_REAL_NOW": real_now.isoformat()}
    env.pop("BATON_TEST_CLOCK_AHEAD_DAYS", None)
    probe = "tests/fixtures/clock/clock_probe.py"

    moved = subprocess.run(
        [sys.executable, "-m", "pytest", probe, "--clock-ahead-days=365"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    not_moved = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", probe], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert moved.returncode == 0, moved.stdout[-2000:]
    assert "clock moved 365 days ahead" in moved.stdout
    assert "2 failed" in not_moved.stdout, not_moved.stdout[-2000:]
