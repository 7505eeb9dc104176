"""ETA windows and the risk of missing the promised window, from learned stage durations (no ORM).

The model. For a holder (else its kind, else every partner) and a status, history gives the p50 and
p90 of T, the time from reaching that status to delivery. T is taken to be log-normal with that
median and 90th percentile. A job that reached the status `e` seconds ago is known to have T > e, so:

- its window is the p50..p90 of T given T > e, counted from when it reached the status. While the
  job is young in its stage this is the plain p50..p90; once it has lasted longer than usual, the
  window moves forward by itself (the jobs that took this long needed this much more), and it
  always ends up after now;
- its risk of being late is P(T > promised_until - reached | T > e): the share of jobs that had
  lasted this long and still missed a deadline this far away.

Silence: when the holder has been silent longer than its limit (resolved from `SilenceThreshold`
rows exactly as the sweep does), the job is also read as if it stopped moving when the limit ran
out (its stage clock stops there and restarts now). The more pessimistic reading of the two is kept,
so silence can only raise the risk and push the window later.

The same functions serve production (`partners.services.eta`) and the backtest (`partners.backtest`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from statistics import NormalDist
from typing import Any, Protocol

from django.utils import timezone

from tracking.statuses import Status

_NORMAL = NormalDist()
Z90 = _NORMAL.inv_cdf(0.9)
# A stage learned from near-identical durations still gets a little spread (log-space, about 5%).
MIN_SIGMA = 0.05
MIN_SECONDS = 60.0
# Beyond this many standard deviations the log-normal's tail says nothing useful (and underflows).
_Z_CAP = 30.0
_SQRT2 = math.sqrt(2.0)

PARTNER = "partner"
BATON = "baton"
KIND = "kind"
EVERYONE = "everyone"
# Partners of a kind, as the subject of "usually need".
KIND_WORDS = {"fleet": "First-party fleets", "subcontractor": "Subcontractors", "carrier": "Parcel carriers"}


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The `fraction` percentile of sorted values, interpolated as PostgreSQL's percentile_cont does."""
    if not ordered:
        raise ValueError("no values")
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Summary:
    samples: int
    p50_seconds: float
    p90_seconds: float


def summarise[K](durations: Mapping[K, Iterable[float]], *, min_samples: int) -> dict[K, Summary]:
    """p50/p90 of each group of durations (seconds) that has at least `min_samples` of them."""
    found: dict[K, Summary] = {}
    for key, values in durations.items():
        ordered = sorted(values)
        if len(ordered) >= max(min_samples, 1):
            found[key] = Summary(len(ordered), percentile(ordered, 0.5), percentile(ordered, 0.9))
    return found


# (scope, partner id or None, partner kind or "", status): one learned group of jobs.
GroupKey = tuple[str, int | None, str, str]


def group_durations(rows: Iterable[Mapping[str, Any]]) -> dict[GroupKey, list[float]]:
    """Seconds from first reaching each status to delivery, per holder, per kind and for everyone.

    Rows: job, stage (status), holder (partner id), holder_kind, reached, delivered, one per job,
    status and holder. A job can reach a status under two holders (both report in transit around a
    hand-off): each holder counts it, and its kind and everyone count it once, from the first time.
    """
    longest: dict[tuple[GroupKey, object], float] = {}
    for row in rows:
        seconds = (row["delivered"] - row["reached"]).total_seconds()
        for key in (
            (PARTNER, row["holder"], "", row["stage"]),
            (KIND, None, row["holder_kind"], row["stage"]),
            (EVERYONE, None, "", row["stage"]),
        ):
            longest[(key, row["job"])] = max(longest.get((key, row["job"]), 0.0), seconds)
    durations: dict[GroupKey, list[float]] = defaultdict(list)
    for (key, _job), seconds in longest.items():
        durations[key].append(seconds)
    return durations


def choose_stage(
    learned: Mapping[GroupKey, Summary], *, partner_id: int | None, kind: str, status: str, holder: str
) -> Stage | None:
    """The holder's own history for this status, else its kind's, else every partner's."""
    own = learned.get((PARTNER, partner_id, "", status)) if partner_id is not None else None
    if own is not None:
        return Stage(own.p50_seconds, own.p90_seconds, own.samples, holder, PARTNER)
    for key, who, scope in (
        ((KIND, None, kind, status), KIND_WORDS.get(kind, kind), KIND),
        ((EVERYONE, None, "", status), "", EVERYONE),
    ):
        found = learned.get(key)
        if found is not None:
            return Stage(found.p50_seconds, found.p90_seconds, found.samples, who, scope)
    return None


# --- silence limits, with the sweep's precedence ---------------------------------------------------


class ThresholdRow(Protocol):
    """A `SilenceThreshold` row as far as precedence is concerned."""

    partner_id: int | None
    partner_kind: str
    status: str
    minutes: int


UNACKNOWLEDGED = "unacknowledged"


def threshold_candidates[T: ThresholdRow](rows: Iterable[T], *, unacknowledged: bool) -> list[T]:
    """The rows that can apply to a job (never acknowledged, or reporting), most specific first.

    Partner before kind before everyone; within each, a named status before any status. A job not
    yet acknowledged takes the "unacknowledged" rows (then any-status rows); a reporting job takes
    the rows for statuses. The first candidate that matches a job wins (the sweep's CASE order).
    """
    if unacknowledged:
        candidates = [row for row in rows if row.status in {"", UNACKNOWLEDGED}]
    else:
        candidates = [row for row in rows if row.status != UNACKNOWLEDGED]

    def specificity(row: T) -> tuple[int, int]:
        who = 0 if row.partner_id else (1 if row.partner_kind else 2)
        return who, 0 if row.status else 1

    return sorted(candidates, key=specificity)


def silence_limit(
    candidates: Sequence[ThresholdRow],
    *,
    partner_id: int,
    partner_kind: str,
    status: str,
    unacknowledged: bool,
    default_minutes: float,
) -> timedelta:
    """How long this holder may stay silent in this status (candidates from `threshold_candidates`)."""
    for row in candidates:
        if row.partner_id and row.partner_id != partner_id:
            continue
        if not row.partner_id and row.partner_kind and row.partner_kind != partner_kind:
            continue
        if row.status and not unacknowledged and row.status != status:
            continue
        return timedelta(minutes=row.minutes)
    return timedelta(minutes=default_minutes)


# --- the distribution of one stage ----------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """What history says about a status: seconds from reaching it to delivery, for `who`.

    `scope` is "partner" (the holder's own history), "kind" (partners of its kind: `who` is the kind
    in words) or "everyone".
    """

    p50_seconds: float
    p90_seconds: float
    samples: int = 0
    who: str = ""
    scope: str = "partner"

    @property
    def mu(self) -> float:
        return math.log(max(self.p50_seconds, MIN_SECONDS))

    @property
    def sigma(self) -> float:
        spread = math.log(max(self.p90_seconds, self.p50_seconds, MIN_SECONDS)) - self.mu
        return max(spread / Z90, MIN_SIGMA)

    def _z(self, seconds: float) -> float:
        return (math.log(seconds) - self.mu) / self.sigma

    def survival(self, seconds: float) -> float:
        """P(T > seconds)."""
        if seconds <= 0:
            return 1.0
        return 0.5 * math.erfc(self._z(seconds) / _SQRT2)

    @property
    def horizon_seconds(self) -> float:
        """The longest stage the model can still reason about (far beyond any real job)."""
        return math.exp(self.mu + _Z_CAP * self.sigma)

    def quantile_given(self, fraction: float, elapsed: float) -> float:
        """t with P(T <= t | T > elapsed) = fraction: where this share of jobs that lasted so long ended."""
        tail = (1.0 - fraction) * self.survival(elapsed)
        return math.exp(self.mu - self.sigma * _NORMAL.inv_cdf(tail))

    def late_given(self, deadline: float, elapsed: float) -> float:
        """P(T > deadline | T > elapsed): the share of jobs that lasted so long and still missed it."""
        if deadline <= elapsed:
            return 1.0
        return min(1.0, self.survival(deadline) / self.survival(elapsed))


# --- one job's estimate ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """What Baton knows of an open job, as the estimate needs it."""

    status: str
    status_at: datetime | None
    promised_until: datetime | None = None
    partner_eta: datetime | None = None
    holder: str = ""  # the holder's name, for the explanation
    heard_at: datetime | None = None  # last heard from the holder, else when it took the job
    silence_limit: timedelta | None = None


@dataclass(frozen=True)
class Estimate:
    earliest: datetime | None = None
    latest: datetime | None = None
    source: str = ""
    late_risk: float | None = None
    explanation: str = ""


@dataclass(frozen=True)
class _Reading:
    earliest: datetime
    latest: datetime
    risk: float | None


def _ceil_minute(moment: datetime) -> datetime:
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)


def _read(stage: Stage, *, started: datetime, now: datetime, promised: datetime | None) -> _Reading:
    """The window and risk if the stage clock started at `started` and still runs at `now`."""
    elapsed = max((now - started).total_seconds(), 0.0)
    if elapsed > stage.horizon_seconds:
        elapsed, started = stage.horizon_seconds, now - timedelta(seconds=stage.horizon_seconds)
    earliest = started + timedelta(seconds=stage.quantile_given(0.5, elapsed))
    latest = started + timedelta(seconds=stage.quantile_given(0.9, elapsed))
    risk = None
    if promised is not None:
        risk = 1.0 if promised <= now else stage.late_given((promised - started).total_seconds(), elapsed)
    return _Reading(max(earliest, now), max(latest, now), risk)


def _worse(first: _Reading, second: _Reading) -> _Reading:
    risks = [r for r in (first.risk, second.risk) if r is not None]
    return _Reading(
        max(first.earliest, second.earliest), max(first.latest, second.latest), max(risks) if risks else None
    )


def estimate(job: Job, stage: Stage | None, *, now: datetime, partner_margin: timedelta) -> Estimate:
    """The ETA window, its source, the risk of missing the promised window, and why, in words.

    The partner's ETA, while it is still ahead, gives the window (its ETA +/- `partner_margin`);
    otherwise Baton's window from the stage. The risk comes from the stage whenever one is known
    (a partner's own ETA is often optimistic, see the backtest), else from the partner's ETA with
    `partner_margin` as its 90% error; no promised window, no risk. Times are rounded to the minute
    and the risk to 1% so that a refresh rewrites only what really moved.
    """
    promised = job.promised_until
    reading: _Reading | None = None
    silent_since: datetime | None = None
    if stage is not None and job.status_at is not None:
        reading = _read(stage, started=job.status_at, now=now, promised=promised)
        if job.heard_at is not None and job.silence_limit is not None:
            limit_ran_out = job.heard_at + job.silence_limit
            if limit_ran_out < now:
                silent_since = limit_ran_out
                # The stage clock stopped when the limit ran out, and runs again from now.
                restarted = now - max(limit_ran_out - job.status_at, timedelta(0))
                reading = _worse(reading, _read(stage, started=restarted, now=now, promised=promised))

    partner_ahead = job.partner_eta is not None and job.partner_eta > now
    if partner_ahead and job.partner_eta is not None:
        earliest, latest, source = job.partner_eta - partner_margin, job.partner_eta + partner_margin, PARTNER
    elif reading is not None:
        earliest, latest, source = _ceil_minute(reading.earliest), _ceil_minute(reading.latest), BATON
    elif job.partner_eta is not None:  # passed, and nothing better to offer: the sweep says eta_passed
        earliest, latest, source = job.partner_eta - partner_margin, job.partner_eta + partner_margin, PARTNER
    else:
        return Estimate(
            late_risk=1.0 if promised and promised <= now else None, explanation=_passed(promised, now)
        )

    risk: float | None = None
    if promised is not None and promised <= now:
        risk = 1.0
    elif reading is not None:
        risk = reading.risk
    elif partner_ahead and promised is not None and job.partner_eta is not None:
        spread = max(partner_margin.total_seconds(), MIN_SECONDS) / Z90
        risk = 1.0 - _NORMAL.cdf((promised - job.partner_eta).total_seconds() / spread)
    explanation = ""
    if risk is not None:
        risk = round(risk, 2)
        explanation = explain(job, stage if reading is not None else None, now=now, silent_since=silent_since)
    return Estimate(earliest, latest, source, risk, explanation)


# --- words for agents -------------------------------------------------------------------------------

# (from reaching the status, "this job ..." at a time)
STAGE_WORDS: dict[str, tuple[str, str]] = {
    Status.PENDING: ("from order", "was ordered"),
    Status.INFO_RECEIVED: ("from the order reaching the partner", "reached the partner"),
    Status.ASSIGNED: ("from assignment", "was assigned"),
    Status.PICKED_UP: ("from pickup", "was picked up"),
    Status.IN_TRANSIT: ("from entering transit", "went into transit"),
    Status.OUT_FOR_DELIVERY: ("from going out for delivery", "went out for delivery"),
    Status.ARRIVING: ("from arriving nearby", "was arriving"),
    Status.ATTEMPT_FAILED: ("after a failed attempt", "had a failed attempt"),
    Status.AVAILABLE_FOR_PICKUP: ("from being ready for collection", "became ready for collection"),
    Status.EXCEPTION: ("after a problem", "hit a problem"),
    Status.RETURNING: ("from starting back", "started back"),
}


def duration_words(seconds: float) -> str:
    """'45 min', '2 h 10 min' (to 5 min from an hour), '26 h', '3 days 4 h'."""
    minutes = max(round(seconds / 60), 1)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 10 * 60:
        minutes = 5 * round(minutes / 5)
        hours, rest = divmod(minutes, 60)
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    hours = round(minutes / 60)
    if hours < 48:
        return f"{hours} h"
    days, rest = divmod(hours, 24)
    return f"{days} days {rest} h" if rest else f"{days} days"


def clock_words(moment: datetime, *, now: datetime, zone: tzinfo | None = None) -> str:
    """'15:00' today (local time), 'Tue 15:00' on another day."""
    zone = zone or timezone.get_current_timezone()
    local = moment.astimezone(zone)
    clock = f"{local.hour:02d}:{local.minute:02d}"  # formatted by hand: a refresh says this a million times
    return clock if local.date() == now.astimezone(zone).date() else f"{local:%a} {clock}"


def _passed(promised: datetime | None, now: datetime) -> str:
    if promised is None or promised > now:
        return ""
    return f"The promised window ended at {clock_words(promised, now=now)} and the job is not delivered yet."


def explain(job: Job, stage: Stage | None, *, now: datetime, silent_since: datetime | None = None) -> str:
    """Why the risk is what it is, in an agent's words, from facts that stay true between refreshes.

    Absolute times ("picked up at 13:05"), not "1 h 5 min left": the text then changes only when
    the facts do, so a refresh does not rewrite every row every few minutes.
    """
    promised = job.promised_until
    if promised is None:
        return ""
    if promised <= now:
        return _passed(promised, now)
    sentences = []
    eta = job.partner_eta
    zone = timezone.get_current_timezone()

    def clock(moment: datetime) -> str:
        return clock_words(moment, now=now, zone=zone)

    if stage is not None and job.status_at is not None:
        since, reached = STAGE_WORDS.get(job.status, (f"from {job.status}", f"reached {job.status}"))
        usual = f"{duration_words(stage.p50_seconds)} {since} to delivery"
        usual += f" (9 in 10 within {duration_words(stage.p90_seconds)})"
        if stage.scope == PARTNER:
            usual = f"{stage.who or job.holder or 'The holder'} usually needs {usual}"
        else:
            usual = f"{stage.who if stage.scope == KIND else 'Deliveries'} usually need {usual}"
            if job.holder:
                usual = f"{job.holder} has little history yet; {usual[0].lower()}{usual[1:]}"
        at, by = clock(job.status_at), clock(promised)
        if promised > job.status_at:
            allowed = duration_words((promised - job.status_at).total_seconds())
            sentences.append(f"{usual}; this job {reached} at {at} and is promised by {by}, {allowed} after.")
        else:
            sentences.append(f"{usual}; this job {reached} at {at}, after the promised {by}.")
        holder = job.holder or "The holder"
        if silent_since is not None and job.heard_at is not None and job.silence_limit is not None:
            sentences.append(
                f"{holder} has not reported since {clock(job.heard_at)}, longer than its "
                f"{duration_words(job.silence_limit.total_seconds())} limit: Baton assumes the job has "
                f"not moved since {clock(silent_since)}."
            )
        if eta is not None and eta > promised:
            sentences.append(f"{holder}'s own ETA, {clock(eta)}, is after the promise.")
    elif eta is not None:
        relation = "after" if eta > promised else "before"
        sentences.append(
            f"{job.holder or 'The holder'} expects to deliver at {clock(eta)}, {relation} "
            f"the promised {clock(promised)}; Baton has too little history to judge."
        )
    return " ".join(sentences)
