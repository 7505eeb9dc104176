"""Baton's own ETA windows and lateness risk: learn stage durations from history, estimate open jobs.

`refresh_stage_durations` (beat, hourly) learns, from the shipments delivered in the last
`BATON["ETA_HISTORY_DAYS"]` days, how long jobs took from first reaching each status to delivery:
per holder and status, per partner kind and status, and over every partner (the last fallback),
keeping only groups with at least `BATON["ETA_MIN_SAMPLES"]` jobs. On PostgreSQL one statement
computes the percentiles (`percentile_cont`); elsewhere (SQLite, the development default) the same
per-job durations are streamed and `partners.prediction.summarise` interpolates them identically.

`refresh_estimates` (beat, every few minutes) gives every open shipment its window, its source and
its risk of missing the promised window (`partners.prediction.estimate`), writing only the rows
whose estimate changed. It publishes nothing on `tracking.changes`: none of these fields is
something listeners are told about (the partner's `eta` is reconciliation's), and the sweep raises
`late_risk` from the stored risk within a minute, publishing that once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Min, QuerySet
from django.utils import timezone

from partners.models import Partner, SilenceThreshold, StageDuration
from partners.prediction import (
    EVERYONE,
    KIND,
    PARTNER,
    Estimate,
    GroupKey,
    Job,
    Stage,
    Summary,
    choose_stage,
    estimate,
    group_durations,
    silence_limit,
    summarise,
    threshold_candidates,
)
from partners.services.sweep import OPEN_STATUSES
from tracking.models import Shipment, TrackingEvent
from tracking.statuses import EventKind, Status

log = logging.getLogger(__name__)

ESTIMATE_FIELDS = ["eta_earliest", "eta_latest", "eta_source", "late_risk", "late_risk_explanation"]
# Open shipments are read in primary-key pages of this size and their changes written per page.
PAGE = 5000
WRITE_BATCH = 1000

# --- learning ---------------------------------------------------------------------------------------


def first_reached(now: datetime) -> QuerySet[Any, Any]:
    """Per delivered job (in the history window), status and holder: when it first reached the status.

    Rows: job (the shipment id), stage (the status), holder (partner id), holder_kind, delivered
    (the delivery time), reached. Only applied status reports of open statuses, made while a
    custody held the job, and not after its delivery.
    """
    since = now - timedelta(days=settings.BATON["ETA_HISTORY_DAYS"])
    return (
        TrackingEvent.objects.filter(
            applied=True,
            kind=EventKind.STATUS,
            status__in=OPEN_STATUSES,
            custody__isnull=False,
            shipment__status=Status.DELIVERED,
            shipment__status_at__gte=since,
            shipment__status_at__lte=now,
            effective_at__lte=F("shipment__status_at"),
        )
        .values(
            job=F("shipment_id"),
            stage=F("status"),
            holder=F("custody__partner_id"),
            holder_kind=F("custody__partner__kind"),
            delivered=F("shipment__status_at"),
        )
        .annotate(reached=Min("effective_at"))
        .order_by()
    )


_PERCENTILES_SQL = """
WITH firsts AS ({firsts}),
durations AS (
    SELECT job, stage, holder, holder_kind, EXTRACT(EPOCH FROM (delivered - reached)) AS seconds
      FROM firsts
),
per_kind AS (
    SELECT holder_kind, stage, MAX(seconds) AS seconds FROM durations GROUP BY job, holder_kind, stage
),
per_status AS (SELECT stage, MAX(seconds) AS seconds FROM durations GROUP BY job, stage)
SELECT 'partner', holder, '', stage, COUNT(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds)
  FROM durations GROUP BY holder, stage HAVING COUNT(*) >= %s
UNION ALL
SELECT 'kind', NULL, holder_kind, stage, COUNT(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds)
  FROM per_kind GROUP BY holder_kind, stage HAVING COUNT(*) >= %s
UNION ALL
SELECT 'everyone', NULL, '', stage, COUNT(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds)
  FROM per_status GROUP BY stage HAVING COUNT(*) >= %s
"""


def _summaries_in_sql(now: datetime, min_samples: int) -> dict[GroupKey, Summary]:
    sql, params = first_reached(now).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(_PERCENTILES_SQL.format(firsts=sql), [*params, min_samples, min_samples, min_samples])
        return {
            (scope, partner, kind, stage): Summary(samples, p50, p90)
            for scope, partner, kind, stage, samples, p50, p90 in cursor.fetchall()
        }


def _summaries_in_python(now: datetime, min_samples: int) -> dict[GroupKey, Summary]:
    return summarise(group_durations(first_reached(now).iterator(chunk_size=PAGE)), min_samples=min_samples)


@dataclass
class LearnResult:
    rows: int
    seconds: float


def refresh_stage_durations(now: datetime | None = None) -> LearnResult:
    """Relearn every StageDuration row from recent deliveries (rows with too few samples go)."""
    started = time.perf_counter()
    now = now or timezone.now()
    min_samples = settings.BATON["ETA_MIN_SAMPLES"]
    if connection.vendor == "postgresql":
        summaries = _summaries_in_sql(now, min_samples)
    else:
        summaries = _summaries_in_python(now, min_samples)
    rows = [
        StageDuration(
            partner_id=partner if scope == PARTNER else None,
            partner_kind=kind if scope == KIND else "",
            status=stage,
            samples=summary.samples,
            p50_seconds=round(summary.p50_seconds),
            p90_seconds=round(summary.p90_seconds),
            computed_at=now,
        )
        for (scope, partner, kind, stage), summary in summaries.items()
    ]
    with transaction.atomic():
        StageDuration.objects.all().delete()
        StageDuration.objects.bulk_create(rows)
    result = LearnResult(rows=len(rows), seconds=time.perf_counter() - started)
    log.info("stage durations: %s rows in %.2f s", result.rows, result.seconds)
    return result


# --- estimating -------------------------------------------------------------------------------------


class Knowledge:
    """Everything one refresh needs besides the shipments: partners, stages, silence limits."""

    def __init__(self) -> None:
        self.partners = {p.pk: (p.name, p.kind) for p in Partner.objects.only("name", "kind")}
        self.learned: dict[GroupKey, Summary] = {
            (
                PARTNER if row.partner_id else (KIND if row.partner_kind else EVERYONE),
                row.partner_id,
                row.partner_kind,
                row.status,
            ): Summary(row.samples, row.p50_seconds, row.p90_seconds)
            for row in StageDuration.objects.all()
        }
        self._stages: dict[tuple[int | None, str], Stage | None] = {}
        thresholds = list(SilenceThreshold.objects.all())
        self.candidates = {
            unacknowledged: threshold_candidates(thresholds, unacknowledged=unacknowledged)
            for unacknowledged in (False, True)
        }
        self.default_minutes = settings.BATON["SILENCE_THRESHOLD_SECONDS"] / 60
        self.margin = timedelta(minutes=settings.BATON["PARTNER_ETA_MARGIN_MINUTES"])
        self._limits: dict[tuple[int, str, bool], timedelta] = {}

    def stage(self, partner_id: int | None, status: str) -> Stage | None:
        key = (partner_id, status)
        if key not in self._stages:
            name, kind = self.partners.get(partner_id, ("", "")) if partner_id is not None else ("", "")
            self._stages[key] = choose_stage(
                self.learned, partner_id=partner_id, kind=kind, status=status, holder=name
            )
        return self._stages[key]

    def limit(self, partner_id: int, status: str, *, unacknowledged: bool) -> timedelta:
        key = (partner_id, status, unacknowledged)
        if key not in self._limits:
            self._limits[key] = silence_limit(
                self.candidates[unacknowledged],
                partner_id=partner_id,
                partner_kind=self.partners.get(partner_id, ("", ""))[1],
                status=status,
                unacknowledged=unacknowledged,
                default_minutes=self.default_minutes,
            )
        return self._limits[key]

    def job(self, row: Mapping[str, Any]) -> Job:
        partner_id = row["current_custody__partner_id"]
        heard_at, limit = None, None
        if partner_id is not None:
            heard_at = row["last_heard_at"] or row["current_custody__started_at"]
            limit = self.limit(partner_id, row["status"], unacknowledged=row["last_heard_at"] is None)
        return Job(
            status=row["status"],
            status_at=row["status_at"],
            promised_until=row["promised_until"],
            partner_eta=row["eta"],
            holder=self.partners.get(partner_id, ("", ""))[0] if partner_id is not None else "",
            heard_at=heard_at,
            silence_limit=limit,
        )

    def estimate(self, row: Mapping[str, Any], now: datetime) -> Estimate:
        stage = self.stage(row["current_custody__partner_id"], row["status"])
        return estimate(self.job(row), stage, now=now, partner_margin=self.margin)


def _open_pages(page: int) -> Iterator[list[dict[str, Any]]]:
    """Open shipments in primary-key order, a page at a time (no long-lived cursor, bounded memory)."""
    columns = [
        "pk",
        "status",
        "status_at",
        "promised_until",
        "eta",
        "last_heard_at",
        "current_custody__partner_id",
        "current_custody__started_at",
        *ESTIMATE_FIELDS,
    ]
    queryset = Shipment.objects.filter(status__in=OPEN_STATUSES).order_by("pk").values(*columns)
    last = 0
    while rows := list(queryset.filter(pk__gt=last)[:page]):
        yield rows
        last = rows[-1]["pk"]


# Rows another transaction holds (the ingest worker reconciling, the sweep's chunk) are skipped, not
# waited for: this statement then never waits, so it can never close a deadlock cycle with them
# (the sweep takes several rows in one transaction, in its own order). A skipped row gets its
# estimate on the next refresh, a few minutes later.
_UPDATE_SQL = """
WITH v AS (
    SELECT * FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[], %s::text[], %s::float8[],
                         %s::text[]) AS v(id, earliest, latest, source, risk, explanation)
), free AS (
    SELECT id FROM {table} WHERE id IN (SELECT id FROM v) FOR UPDATE SKIP LOCKED
)
UPDATE {table} AS s
   SET eta_earliest = v.earliest, eta_latest = v.latest, eta_source = v.source, late_risk = v.risk,
       late_risk_explanation = v.explanation
  FROM v JOIN free USING (id)
 WHERE s.id = v.id
"""


def _write(changed: Mapping[int, tuple[Any, ...]]) -> int:
    """Store new estimates, returning how many rows were written: on PostgreSQL one UPDATE per page
    (bulk_update's CASE per row is far slower) that skips rows locked elsewhere."""
    if connection.vendor == "postgresql":
        columns = [list(changed), *(list(values) for values in zip(*changed.values(), strict=True))]
        table = connection.ops.quote_name(Shipment._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(_UPDATE_SQL.format(table=table), columns)
            return cursor.rowcount
    rows = [Shipment(pk=pk, **dict(zip(ESTIMATE_FIELDS, new, strict=True))) for pk, new in changed.items()]
    return Shipment.objects.bulk_update(rows, ESTIMATE_FIELDS, batch_size=WRITE_BATCH)


@dataclass
class EstimateResult:
    open: int = 0
    changed: int = 0
    baton: int = 0
    partner: int = 0
    at_risk: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.open} open shipments: {self.baton} with Baton's window, {self.partner} with the "
            f"partner's, {self.at_risk} at risk; {self.changed} changed in {self.seconds:.2f} s"
        )


def refresh_estimates(now: datetime | None = None, *, page: int = PAGE) -> EstimateResult:
    """Give every open shipment its ETA window and late risk; write only the rows that changed."""
    started = time.perf_counter()
    now = now or timezone.now()
    knowledge = Knowledge()
    late_at = settings.BATON["LATE_RISK_FLAG_PERCENT"] / 100
    result = EstimateResult()
    for rows in _open_pages(page):
        changed: dict[int, tuple[Any, ...]] = {}
        for row in rows:
            found = knowledge.estimate(row, now)
            result.open += 1
            result.baton += found.source == "baton"
            result.partner += found.source == "partner"
            result.at_risk += found.late_risk is not None and found.late_risk >= late_at
            new = (found.earliest, found.latest, found.source, found.late_risk, found.explanation)
            if new != tuple(row[name] for name in ESTIMATE_FIELDS):
                changed[row["pk"]] = new
        if changed:
            result.changed += _write(changed)
    result.seconds = time.perf_counter() - started
    log.info("estimates: %s", result.summary())
    return result


__all__ = ["EstimateResult", "LearnResult", "first_reached", "refresh_estimates", "refresh_stage_durations"]
