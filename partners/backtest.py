"""A backtest of the ETA model on synthetic history whose true lateness is known (no ORM).

`run_backtest` invents months of deliveries by partners that differ in speed, spread, the honesty of
their ETAs, silent spells (some hiding a real stall), failed attempts and hand-offs; records what
Baton would have received and when; learns stage durations from the first part exactly as
`refresh_stage_durations` does (`group_durations` + `summarise`); then, on the rest, asks
`partners.prediction.estimate` (the function production uses) for the risk at fixed horizons before
each promised window closes, knowing only what had arrived by then. Beside it, the naive baseline:
late iff the holder's latest ETA is after the promised time (no ETA: on time).
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from partners.prediction import (
    GroupKey,
    Job,
    Summary,
    ThresholdRow,
    choose_stage,
    estimate,
    group_durations,
    silence_limit,
    summarise,
    threshold_candidates,
)
from tracking.statuses import Status

# The synthetic calendar (never compared with the real clock): a Monday morning.
EPOCH = datetime(2026, 1, 5, tzinfo=UTC)
HORIZONS = (timedelta(hours=2), timedelta(minutes=30))
PARTNER_MARGIN = timedelta(minutes=15)
SETBACKS = frozenset({Status.ATTEMPT_FAILED, Status.EXCEPTION})


@dataclass(frozen=True)
class Profile:
    """How one synthetic partner behaves. Durations in minutes; chances per job."""

    id: int
    name: str
    kind: str
    route: tuple[tuple[str, float], ...]  # (status, median minutes until the next status)
    speed: float = 1.0  # multiplies every median
    spread: float = 0.3  # log-sd of each stage around its median
    gives_eta: bool = True
    eta_bias: float = 0.0  # the partner's ETA minus its own honest guess (negative: optimistic)
    eta_noise: float = 10.0
    silent: float = 0.05  # chance of a silent spell during the job
    stall: float = 0.4  # chance that a silent spell hides a real stall
    fail: float = 0.05  # chance the first attempt fails (redelivery the next day)
    ping_minutes: float | None = 10.0  # position reports while moving
    hands_off: float = 0.0  # chance to subcontract right after pickup
    hands_to: tuple[int, ...] = ()


COURIER = (("assigned", 35.0), ("picked_up", 25.0), ("out_for_delivery", 50.0))
CARRIER = (("info_received", 120.0), ("picked_up", 180.0), ("in_transit", 720.0), ("out_for_delivery", 180.0))
MOVING = frozenset({Status.PICKED_UP, Status.OUT_FOR_DELIVERY})

PROFILES = (
    Profile(
        1,
        "Northwind Own Fleet",
        "fleet",
        COURIER,
        speed=1.0,
        spread=0.25,
        eta_noise=8,
        silent=0.03,
        stall=0.3,
        fail=0.04,
        hands_off=0.25,
        hands_to=(2, 3),
    ),
    Profile(
        2,
        "Swift Couriers",
        "subcontractor",
        COURIER,
        speed=0.85,
        spread=0.3,
        eta_bias=-5,
        silent=0.05,
        stall=0.4,
        fail=0.05,
    ),
    Profile(
        3,
        "ZoomGig",
        "subcontractor",
        COURIER,
        speed=1.0,
        spread=0.4,
        eta_bias=-25,
        eta_noise=20,
        silent=0.2,
        stall=0.6,
        fail=0.08,
        ping_minutes=15,
    ),
    Profile(
        4,
        "BigBox 3PL",
        "subcontractor",
        COURIER,
        speed=1.1,
        spread=0.35,
        gives_eta=False,
        silent=0.1,
        stall=0.5,
        fail=0.06,
        ping_minutes=None,
        hands_off=0.2,
        hands_to=(3,),
    ),
    Profile(
        5,
        "ParcelNet",
        "carrier",
        CARRIER,
        speed=1.0,
        spread=0.3,
        eta_bias=-60,
        eta_noise=90,
        silent=0.1,
        stall=0.5,
        fail=0.05,
        ping_minutes=None,
    ),
)
BY_ID = {profile.id: profile for profile in PROFILES}
# Who takes a new job, with weights: same-day couriers, and next-day parcels.
SAME_DAY = ((1, 40), (2, 20), (3, 20), (4, 20))
NEXT_DAY = ((5, 1),)


@dataclass
class Report:
    occurred: datetime
    received: datetime
    holder: int
    status: str
    eta: datetime | None = None


@dataclass
class SyntheticJob:
    number: int
    created: datetime
    promised_until: datetime
    delivered: datetime
    custody: list[tuple[datetime, int]]  # (from, holder): who held it from when
    reports: list[Report] = field(default_factory=list)
    heard: dict[int, list[datetime]] = field(default_factory=dict)  # holder -> sorted receipt times

    @property
    def late(self) -> bool:
        return self.delivered > self.promised_until


# --- the world --------------------------------------------------------------------------------------


def _minutes(value: float) -> timedelta:
    return timedelta(minutes=value)


def _next_morning(moment: datetime, rng: random.Random) -> datetime:
    day = moment.replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return day + _minutes(rng.uniform(0, 180))


def make_job(number: int, created: datetime, rng: random.Random) -> SyntheticJob:
    """One job's true journey, and what Baton receives of it and when."""
    same_day = rng.random() < 0.8
    choices = SAME_DAY if same_day else NEXT_DAY
    first = rng.choices([pid for pid, _ in choices], [w for _, w in choices])[0]
    allowance = rng.uniform(2.0, 4.0) * 60 if same_day else rng.uniform(22, 32) * 60
    day_factor = math.exp(rng.gauss(0, 0.2))  # traffic and weather: every stage of the job at once

    # The true timeline: (time, holder, status), stage by stage; hand-offs switch route and holder.
    moment, holder = created, first
    custody = [(created, holder)]
    truth: list[tuple[datetime, int, str]] = []
    route = list(BY_ID[holder].route)
    index = 0
    stages: list[tuple[datetime, datetime, int, str]] = []  # (start, end, holder, status)
    while index < len(route):
        status, median = route[index]
        profile = BY_ID[holder]
        truth.append((moment, holder, status))
        length = median * profile.speed * day_factor * math.exp(rng.gauss(0, profile.spread))
        stages.append((moment, moment + _minutes(length), holder, status))
        moment += _minutes(length)
        if status == Status.PICKED_UP and profile.hands_to and rng.random() < profile.hands_off:
            holder = rng.choice(profile.hands_to)
            moment += _minutes(rng.uniform(5, 25))  # the hand-over itself
            custody.append((moment, holder))
            route = list(BY_ID[holder].route)
            index = [s for s, _ in route].index(Status.PICKED_UP)
        index += 1
    last = BY_ID[holder]
    if rng.random() < last.fail:  # the attempt fails; out again the next morning
        truth.append((moment, holder, Status.ATTEMPT_FAILED))
        retry = _next_morning(moment, rng)
        stages.append((moment, retry, holder, Status.ATTEMPT_FAILED))
        truth.append((retry, holder, Status.OUT_FOR_DELIVERY))
        length = dict(last.route)[Status.OUT_FOR_DELIVERY] * last.speed * math.exp(rng.gauss(0, last.spread))
        stages.append((retry, retry + _minutes(length), holder, Status.OUT_FOR_DELIVERY))
        moment = retry + _minutes(length)

    # A silent spell: the holder goes quiet at some point of one of its stages; sometimes it is a
    # real stall, which delays everything after it, and the silence lasts until the stage ends.
    silence: tuple[int, datetime, datetime] | None = None
    if rng.random() < BY_ID[stages[0][2]].silent or rng.random() < BY_ID[holder].silent:
        start, end, who, _status = rng.choice(stages)
        quiet_from = start + (end - start) * rng.uniform(0, 0.6)
        scale = 1.0 if BY_ID[who].kind != "carrier" else 6.0
        if rng.random() < BY_ID[who].stall:
            delay = _minutes(rng.uniform(45, 150) * scale)
            truth = [(t + delay if t >= end else t, h, s) for t, h, s in truth]
            stages = [
                (a + delay if a >= end else a, b + delay if b >= end else b, h, s) for a, b, h, s in stages
            ]
            custody = [(t + delay if t >= end else t, h) for t, h in custody]
            moment += delay
            silence = (who, quiet_from, end + delay + _minutes(rng.uniform(0, 20)))
        else:
            silence = (who, quiet_from, quiet_from + _minutes(rng.uniform(40, 150) * scale))
    delivered = moment
    truth.append((delivered, holder, Status.DELIVERED))

    def received(at: datetime, who: int) -> datetime:
        """A report arrives a minute or two later, or when a silence it fell into ends."""
        lag = at + _minutes(rng.uniform(0.5, 3))
        if silence is not None and silence[0] == who and silence[1] <= at < silence[2]:
            return silence[2]
        return lag

    job = SyntheticJob(number, created, created + _minutes(allowance), delivered, custody)
    for occurred, who, status in truth:
        profile = BY_ID[who]
        eta = None
        if profile.gives_eta and status not in SETBACKS and status != Status.DELIVERED:
            # The partner's own guess: its usual remaining time, part of the day's traffic, its bias.
            remaining = sum(m for s, m in profile.route[[s for s, _ in profile.route].index(status) :])
            guess = remaining * profile.speed * math.sqrt(day_factor) + profile.eta_bias
            eta = occurred + _minutes(max(guess + rng.gauss(0, profile.eta_noise), 5))
        job.reports.append(Report(occurred, received(occurred, who), who, status, eta))
    for start, end, who, status in stages:
        ping = BY_ID[who].ping_minutes
        if ping and status in MOVING:
            moment = start + _minutes(ping)
            while moment < min(end, delivered):
                in_silence = silence is not None and silence[0] == who and silence[1] <= moment < silence[2]
                if not in_silence:
                    job.heard.setdefault(who, []).append(moment)
                moment += _minutes(ping)
    for report in job.reports:
        job.heard.setdefault(report.holder, []).append(report.received)
    for times in job.heard.values():
        times.sort()
    job.reports.sort(key=lambda r: (r.occurred, r.received))
    return job


def make_history(*, days: int, per_day: int, seed: int) -> list[SyntheticJob]:
    rng = random.Random(seed)
    jobs: list[SyntheticJob] = []
    for day in range(days):
        morning = EPOCH + timedelta(days=day, hours=7)
        for _ in range(per_day):
            created = morning + _minutes(rng.uniform(0, 10 * 60))
            jobs.append(make_job(len(jobs), created, rng))
    return jobs


# --- what Baton knew --------------------------------------------------------------------------------


def training_rows(jobs: Iterable[SyntheticJob], *, until: datetime) -> list[dict[str, Any]]:
    """The rows `first_reached` would give: first report of each status per holder, delivered by `until`."""
    rows: dict[tuple[int, str, int], dict[str, Any]] = {}
    for job in jobs:
        if job.delivered > until:
            continue
        for report in job.reports:
            if report.status == Status.DELIVERED or report.occurred > job.delivered:
                continue
            key = (job.number, report.status, report.holder)
            if key not in rows:
                rows[key] = {
                    "job": job.number,
                    "stage": report.status,
                    "holder": report.holder,
                    "holder_kind": BY_ID[report.holder].kind,
                    "reached": report.occurred,
                    "delivered": job.delivered,
                }
    return list(rows.values())


def known_at(
    job: SyntheticJob, moment: datetime, thresholds: Sequence[Sequence[ThresholdRow]], default_minutes: float
) -> tuple[Job, int] | None:
    """The job as Baton saw it at `moment`, and its holder; None once Baton knew it was delivered."""
    known = [r for r in job.reports if r.received <= moment]
    if any(r.status == Status.DELIVERED for r in known):
        return None
    holder = [h for start, h in job.custody if start <= moment][-1]
    held_since = [start for start, h in job.custody if start <= moment][-1]
    status: str = Status.PENDING
    status_at = job.created
    for report in known:
        if report.status != status:
            status, status_at = report.status, report.occurred
    setback = max((r.occurred for r in known if r.status in SETBACKS), default=None)
    etas = [
        r.eta
        for r in known
        if r.holder == holder and r.eta is not None and (setback is None or r.occurred >= setback)
    ]
    times = job.heard.get(holder, [])
    heard = times[bisect_right(times, moment) - 1] if bisect_right(times, moment) else None
    if heard is not None and heard < held_since:
        heard = None
    unacknowledged = heard is None
    profile = BY_ID[holder]
    limit = silence_limit(
        thresholds[unacknowledged],
        partner_id=holder,
        partner_kind=profile.kind,
        status=status,
        unacknowledged=unacknowledged,
        default_minutes=default_minutes,
    )
    seen = Job(
        status=status,
        status_at=status_at,
        promised_until=job.promised_until,
        partner_eta=etas[-1] if etas else None,
        holder=profile.name,
        heard_at=heard or held_since,
        silence_limit=limit,
    )
    return seen, holder


# --- scoring ----------------------------------------------------------------------------------------


@dataclass
class Score:
    """Precision and recall of "late" calls (risk >= the flag threshold), and the Brier score."""

    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0
    squared_error: float = 0.0
    count: int = 0

    def add(self, probability: float, late: bool, threshold: float) -> None:
        called = probability >= threshold
        self.true_positive += called and late
        self.false_positive += called and not late
        self.false_negative += late and not called
        self.squared_error += (probability - late) ** 2
        self.count += 1

    @property
    def precision(self) -> float:
        called = self.true_positive + self.false_positive
        return self.true_positive / called if called else 0.0

    @property
    def recall(self) -> float:
        late = self.true_positive + self.false_negative
        return self.true_positive / late if late else 0.0

    @property
    def f1(self) -> float:
        both = self.precision + self.recall
        return 2 * self.precision * self.recall / both if both else 0.0

    @property
    def brier(self) -> float:
        return self.squared_error / self.count if self.count else 0.0


@dataclass
class HorizonResult:
    horizon: timedelta
    open_jobs: int = 0
    late_jobs: int = 0
    model: Score = field(default_factory=Score)
    baseline: Score = field(default_factory=Score)
    without_silence: Score = field(default_factory=Score)  # the model, ignoring silence (ablation)


@dataclass
class BacktestResult:
    seed: int
    days: int
    train_days: int
    jobs: int
    trained_on: int
    tested_on: int
    groups: int
    horizons: list[HorizonResult]

    @property
    def beats_baseline(self) -> bool:
        return all(h.model.brier < h.baseline.brier and h.model.f1 > h.baseline.f1 for h in self.horizons)

    def lines(self) -> list[str]:
        out = [
            f"Backtest, seed {self.seed}: {self.days} days, {self.jobs:,} synthetic jobs; learned "
            f"{self.groups} stage groups from the {self.trained_on:,} delivered in days 1-{self.train_days}; "
            f"tested on the {self.tested_on:,} created after.",
        ]
        for result in self.horizons:
            hours = result.horizon.total_seconds() / 3600
            when = f"{hours:g} h" if hours >= 1 else f"{result.horizon.total_seconds() / 60:g} min"
            share = result.late_jobs / result.open_jobs if result.open_jobs else 0.0
            out.append(
                f"{when} before the window closes: {result.open_jobs:,} jobs still open, "
                f"{result.late_jobs:,} ({share:.0%}) delivered late"
            )
            out.append(f"  {'':<28}{'precision':>10}{'recall':>8}{'F1':>7}{'Brier':>8}")
            for name, score in (
                ("Baton (stage model)", result.model),
                ("baseline (partner ETA)", result.baseline),
                ("Baton ignoring silence", result.without_silence),
            ):
                figures = f"{score.precision:>10.3f}{score.recall:>8.3f}{score.f1:>7.3f}{score.brier:>8.3f}"
                out.append(f"  {name:<28}{figures}")
        out.append(
            "The model beats the baseline."
            if self.beats_baseline
            else "The model does NOT beat the baseline."
        )
        return out


def run_backtest(
    *,
    seed: int = 7,
    days: int = 120,
    per_day: int = 150,
    train_fraction: float = 0.75,
    thresholds: Iterable[ThresholdRow] = (),
    default_silence_minutes: float = 120.0,
    min_samples: int = 20,
    flag_at: float = 0.5,
) -> BacktestResult:
    """Generate, learn on the first `train_fraction` of days, score both predictors on the rest."""
    jobs = make_history(days=days, per_day=per_day, seed=seed)
    train_days = max(1, min(days - 1, round(days * train_fraction)))
    split = EPOCH + timedelta(days=train_days)
    rows = training_rows((job for job in jobs if job.created < split), until=split)
    learned: Mapping[GroupKey, Summary] = summarise(group_durations(rows), min_samples=min_samples)
    rows_list = list(thresholds)
    candidates = [
        threshold_candidates(rows_list, unacknowledged=False),
        threshold_candidates(rows_list, unacknowledged=True),
    ]
    tested = [job for job in jobs if job.created >= split]
    results = []
    for horizon in HORIZONS:
        result = HorizonResult(horizon)
        for job in tested:
            moment = job.promised_until - horizon
            if moment < job.created:
                continue
            seen = known_at(job, moment, candidates, default_silence_minutes)
            if seen is None:
                continue
            view, holder = seen
            stage = choose_stage(
                learned, partner_id=holder, kind=BY_ID[holder].kind, status=view.status, holder=view.holder
            )
            risk = estimate(view, stage, now=moment, partner_margin=PARTNER_MARGIN).late_risk
            deaf = estimate(
                replace(view, silence_limit=None), stage, now=moment, partner_margin=PARTNER_MARGIN
            )
            naive = 1.0 if view.partner_eta is not None and view.partner_eta > job.promised_until else 0.0
            result.open_jobs += 1
            result.late_jobs += job.late
            result.model.add(risk or 0.0, job.late, flag_at)
            result.baseline.add(naive, job.late, flag_at)
            result.without_silence.add(deaf.late_risk or 0.0, job.late, flag_at)
        results.append(result)
    return BacktestResult(
        seed=seed,
        days=days,
        train_days=train_days,
        jobs=len(jobs),
        trained_on=len({row["job"] for row in rows}),
        tested_on=len(tested),
        groups=len(learned),
        horizons=results,
    )
