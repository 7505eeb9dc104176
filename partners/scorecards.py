"""Partner scorecard figures from summed daily counts, and which partner to give the next job (pure: no ORM).

Every stored figure is a count or a total (`partners.PartnerDayFigures`), so any set of rows adds up;
the rates, percentiles and the recommendation are computed here from those sums.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

LATENCY_BUCKETS = [5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600]
BANDS = {
    "morning": "Morning (before 12:00)",
    "afternoon": "Afternoon (12:00-17:00)",
    "evening": "Evening (from 17:00)",
}
# Fewer jobs than this and a partner's rates say little: they are shown, but not ranked first.
MIN_JOBS_FOR_RECOMMENDATION = 20


def band_of(hour: int) -> str:
    return "morning" if hour < 12 else "afternoon" if hour < 17 else "evening"


@dataclass
class Totals:
    """Summed counts for a partner over some days, areas and bands."""

    jobs: int = 0
    delivered: int = 0
    with_window: int = 0
    on_time: int = 0
    attempted: int = 0
    first_attempt: int = 0
    with_proof: int = 0
    handed_on: int = 0
    cases: int = 0
    silent_seconds: int = 0
    events: int = 0
    conflicts: int = 0
    messages: int = 0
    unmatched: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))

    @classmethod
    def from_sums(cls, sums: Mapping[str, Any]) -> Totals:
        """From summed columns (those not in `sums` are 0)."""
        counts: dict[str, Any] = {name: int(sums[name] or 0) for name in _COUNT_NAMES if name in sums}
        totals = cls(**counts)
        if _LATENCY_NAMES[0] in sums:
            totals.latency = [int(sums.get(name) or 0) for name in _LATENCY_NAMES]
        return totals

    @property
    def on_time_rate(self) -> float | None:
        return _ratio(self.on_time, self.with_window)

    @property
    def first_attempt_rate(self) -> float | None:
        return _ratio(self.first_attempt, self.attempted)

    @property
    def pod_coverage(self) -> float | None:
        return _ratio(self.with_proof, self.delivered)

    @property
    def conflict_rate(self) -> float | None:
        return _ratio(self.conflicts, self.events)

    @property
    def unmatched_rate(self) -> float | None:
        return _ratio(self.unmatched, self.messages)

    @property
    def silent_minutes_per_job(self) -> float | None:
        return None if not self.jobs else self.silent_seconds / 60 / self.jobs

    @property
    def cases_per_100_jobs(self) -> float | None:
        return None if not self.jobs else 100 * self.cases / self.jobs

    @property
    def latency_p50(self) -> int | None:
        return latency_percentile(self.latency, 0.5)

    @property
    def latency_p90(self) -> int | None:
        return latency_percentile(self.latency, 0.9)


_COUNT_NAMES = [f.name for f in fields(Totals) if f.name != "latency"]
_LATENCY_NAMES = [f"lat_{i}" for i in range(len(LATENCY_BUCKETS) + 1)]


def _ratio(part: int, whole: int) -> float | None:
    return None if not whole else part / whole


def latency_percentile(
    histogram: Sequence[int], quantile: float, *, bounds: Sequence[int] = LATENCY_BUCKETS
) -> int | None:
    """The upper bound (seconds) of the bucket holding the quantile; beyond the last bound, -1."""
    total = sum(histogram)
    if not total:
        return None
    needed = math.ceil(quantile * total)
    seen = 0
    for index, count in enumerate(histogram):
        seen += count
        if seen >= needed:
            return bounds[index] if index < len(bounds) else -1
    return -1


def latency_label(seconds: int | None) -> str:
    if seconds is None:
        return "no data"
    if seconds < 0:
        return f"over {LATENCY_BUCKETS[-1] // 3600} h"
    return f"≤ {seconds} s" if seconds < 120 else f"≤ {seconds // 60} min"


def wilson_lower_bound(successes: int, trials: int, z: float = 1.96) -> float:
    """The pessimistic end of a 95% interval: a rate from few jobs counts for less."""
    if not trials:
        return 0.0
    p = successes / trials
    centre = p + z * z / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return (centre - spread) / (1 + z * z / trials)


@dataclass(frozen=True)
class Candidate:
    partner: str
    totals: Totals
    score: float
    enough_data: bool
    reasons: tuple[str, ...]


def score(totals: Totals) -> tuple[float, tuple[str, ...]]:
    """Higher is better: on time, first time, heard from, no calls caused; small samples count for less."""
    on_time = wilson_lower_bound(totals.on_time, totals.with_window)
    first = wilson_lower_bound(totals.first_attempt, totals.attempted)
    silent = totals.silent_minutes_per_job or 0.0
    informed = 1 - min(silent / 120, 1.0)  # two silent hours per job scores nothing
    # Twenty cases per hundred jobs scores nothing.
    quiet_customers = 1 - min(5 * totals.cases / totals.jobs, 1.0) if totals.jobs else 0.0
    total = 0.4 * on_time + 0.2 * first + 0.25 * informed + 0.15 * quiet_customers
    reasons = (
        f"on time {_pct(totals.on_time_rate)} of {totals.with_window} delivered with a window",
        f"first attempt {_pct(totals.first_attempt_rate)} of {totals.attempted}",
        f"{silent:.0f} silent minutes per job over {totals.jobs} jobs",
        f"{totals.cases} cases caused",
    )
    return total, reasons


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.0%}"


def recommend(
    candidates: Mapping[str, Totals], *, min_jobs: int = MIN_JOBS_FOR_RECOMMENDATION
) -> list[Candidate]:
    """Partners best first; those with fewer than `min_jobs` jobs rank after those with enough."""
    ranked = []
    for partner, totals in candidates.items():
        value, reasons = score(totals)
        ranked.append(Candidate(partner, totals, value, totals.jobs >= min_jobs, reasons))
    ranked.sort(key=lambda c: (not c.enough_data, -c.score, c.partner))
    return ranked
