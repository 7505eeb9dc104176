"""Partner scorecards: daily figures materialised by set-based SQL over the events table, and read back.

`materialise_day` runs three grouped queries for one local day (jobs, their events, inbound messages)
and replaces that day's `PartnerDayFigures` rows; a beat job runs it for today and yesterday, and
`manage.py scorecards --days N` backfills. Pages read only the materialised rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import TruncMonth, TruncWeek
from django.utils import timezone

from partners.models import ANY, LATENCY_BUCKETS, Partner, PartnerDayFigures
from partners.scorecards import Candidate, Totals, recommend

# Silence shorter than this between two reports is normal work, not a blind spot.
SILENCE_GRACE_SECONDS = 30 * 60
COUNT_FIELDS = [
    "jobs",
    "delivered",
    "with_window",
    "on_time",
    "attempted",
    "first_attempt",
    "with_proof",
    "handed_on",
    "cases",
    "silent_seconds",
    "events",
    "conflicts",
    "messages",
    "unmatched",
    *[f"lat_{i}" for i in range(len(LATENCY_BUCKETS) + 1)],
]


def _dialect() -> dict[str, str]:
    if connection.vendor == "postgresql":
        return {
            "epoch": "EXTRACT(EPOCH FROM {})",
            "district": "split_part({}, ' ', 1)",
            "hour": "EXTRACT(HOUR FROM {} AT TIME ZONE '" + settings.TIME_ZONE.replace("'", "") + "')",
        }
    # SQLite (development): datetimes are UTC text; bands use UTC hours there.
    return {
        "epoch": "(julianday({}) * 86400.0)",
        "district": "(CASE WHEN instr({0}, ' ') > 0 THEN substr({0}, 1, instr({0}, ' ') - 1) ELSE {0} END)",
        "hour": "CAST(strftime('%%H', {}) AS INTEGER)",
    }


def _sql(template: str) -> str:
    d = _dialect()
    band_hour = d["hour"].format("COALESCE(s.promised_from, c.started_at)")
    return (
        template.replace("{area}", d["district"].format("s.postcode"))
        .replace(
            "{band}",
            f"(CASE WHEN {band_hour} < 12 THEN 'morning' "
            f"WHEN {band_hour} < 17 THEN 'afternoon' ELSE 'evening' END)",
        )
        .replace(
            "{latency}", f"({d['epoch'].format('e.received_at')} - {d['epoch'].format('e.occurred_at')})"
        )
        .replace("{gap}", f"({d['epoch'].format('e.occurred_at')} - {d['epoch'].format('{previous}')})")
        .replace(
            "{previous}",
            "COALESCE(LAG(e.occurred_at) OVER (PARTITION BY e.custody_id ORDER BY e.occurred_at, e.id), "
            "j.started_at)",
        )
        .replace(
            "{tail}",
            f"({d['epoch'].format('COALESCE(j.delivered_at, j.ended_at, %(now)s)')}"
            f" - {d['epoch'].format('COALESCE(j.last_report, j.started_at)')})",
        )
    )


JOBS_SQL = """
WITH jobs AS (
  SELECT c.id, c.partner_id, c.started_at, c.ended_at, s.promised_until, {area} AS area, {band} AS band,
    (SELECT MIN(e.occurred_at) FROM tracking_trackingevent e
      WHERE e.custody_id = c.id AND e.applied AND e.status = 'delivered') AS delivered_at,
    (SELECT MIN(e.occurred_at) FROM tracking_trackingevent e
      WHERE e.custody_id = c.id AND e.status = 'attempt_failed') AS failed_at,
    (SELECT MAX(e.occurred_at) FROM tracking_trackingevent e
      WHERE e.custody_id = c.id AND e.partner_id = c.partner_id) AS last_report,
    (CASE WHEN EXISTS (SELECT 1 FROM tracking_trackingevent e
      WHERE e.custody_id = c.id AND (e.kind = 'proof' OR e.proof IS NOT NULL)) THEN 1 ELSE 0 END)
      AS has_proof,
    (CASE WHEN EXISTS (SELECT 1 FROM partners_custody n WHERE n.handed_off_by_id = c.id) THEN 1 ELSE 0 END)
      AS handed_on,
    (SELECT COUNT(*) FROM tracking_activity a WHERE a.shipment_id = c.shipment_id AND a.kind = 'case_opened'
      AND a.actor <> 'rule' AND a.occurred_at >= c.started_at
      AND (c.ended_at IS NULL OR a.occurred_at < c.ended_at)) AS cases
  FROM partners_custody c JOIN tracking_shipment s ON s.id = c.shipment_id
  WHERE c.started_at >= %(start)s AND c.started_at < %(end)s
),
gaps AS (
  SELECT e.custody_id, {gap} AS gap
  FROM tracking_trackingevent e JOIN jobs j ON j.id = e.custody_id
  WHERE e.partner_id = j.partner_id
),
silence AS (
  SELECT custody_id, SUM(CASE WHEN gap > %(grace)s THEN gap - %(grace)s ELSE 0 END) AS silent
  FROM gaps GROUP BY custody_id
)
SELECT j.partner_id, j.area, j.band,
  COUNT(*),
  SUM(CASE WHEN j.delivered_at IS NOT NULL THEN 1 ELSE 0 END),
  SUM(CASE WHEN j.delivered_at IS NOT NULL AND j.promised_until IS NOT NULL THEN 1 ELSE 0 END),
  SUM(CASE WHEN j.delivered_at IS NOT NULL AND j.delivered_at <= j.promised_until THEN 1 ELSE 0 END),
  SUM(CASE WHEN j.delivered_at IS NOT NULL OR j.failed_at IS NOT NULL THEN 1 ELSE 0 END),
  SUM(CASE WHEN j.delivered_at IS NOT NULL AND (j.failed_at IS NULL OR j.failed_at > j.delivered_at)
    THEN 1 ELSE 0 END),
  SUM(CASE WHEN j.delivered_at IS NOT NULL AND j.has_proof = 1 THEN 1 ELSE 0 END),
  SUM(j.handed_on),
  SUM(j.cases),
  SUM(COALESCE(sl.silent, 0) + CASE WHEN {tail} > %(grace)s THEN {tail} - %(grace)s ELSE 0 END)
FROM jobs j LEFT JOIN silence sl ON sl.custody_id = j.id
GROUP BY j.partner_id, j.area, j.band
"""
JOB_COLUMNS = [
    "jobs",
    "delivered",
    "with_window",
    "on_time",
    "attempted",
    "first_attempt",
    "with_proof",
    "handed_on",
    "cases",
    "silent_seconds",
]

EVENTS_SQL = (
    """
SELECT c.partner_id, {area}, {band}, COUNT(*),
  SUM(CASE WHEN CAST(e.flags AS TEXT) LIKE '%%"conflict"%%' THEN 1 ELSE 0 END),
"""
    + ",\n".join(
        f"  SUM(CASE WHEN {{latency}} > {low} AND {{latency}} <= {high} THEN 1 ELSE 0 END)"
        for low, high in zip([-(10**9), *LATENCY_BUCKETS], [*LATENCY_BUCKETS, 10**12], strict=True)
    )
    + """
FROM tracking_trackingevent e
  JOIN partners_custody c ON c.id = e.custody_id
  JOIN tracking_shipment s ON s.id = c.shipment_id
WHERE c.started_at >= %(start)s AND c.started_at < %(end)s AND e.partner_id = c.partner_id
GROUP BY c.partner_id, {area}, {band}
"""
)
EVENT_COLUMNS = ["events", "conflicts", *[f"lat_{i}" for i in range(len(LATENCY_BUCKETS) + 1)]]

MESSAGES_SQL = """
SELECT partner_id, COUNT(*), SUM(CASE WHEN state = 'unmatched' THEN 1 ELSE 0 END)
FROM partners_inboundmessage WHERE received_at >= %(start)s AND received_at < %(end)s
GROUP BY partner_id
"""


def day_bounds(day: date) -> tuple[datetime, datetime]:
    zone = ZoneInfo(settings.TIME_ZONE)
    return (
        datetime.combine(day, time.min, tzinfo=zone),
        datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone),
    )


def materialise_day(day: date, *, now: datetime | None = None) -> int:
    """Recompute one local day's figures for every partner, area and band; return the rows written."""
    start, end = day_bounds(day)
    params: dict[str, Any] = {
        "start": start,
        "end": end,
        "grace": SILENCE_GRACE_SECONDS,
        "now": now or timezone.now(),
    }
    rows: dict[tuple[int, str, str], dict[str, int]] = {}
    with connection.cursor() as cursor:
        for sql, columns in ((JOBS_SQL, JOB_COLUMNS), (EVENTS_SQL, EVENT_COLUMNS)):
            cursor.execute(_sql(sql), params)
            for partner_id, area, band, *values in cursor.fetchall():
                row = rows.setdefault((partner_id, area or "", band), {})
                row.update(
                    {name: round(float(value or 0)) for name, value in zip(columns, values, strict=True)}
                )
        cursor.execute(MESSAGES_SQL, params)
        for partner_id, messages, unmatched in cursor.fetchall():
            rows[(partner_id, "", "")] = {"messages": int(messages), "unmatched": int(unmatched or 0)}
    return store_day(day, rows)


def store_day(day: date, rows: dict[tuple[int, str, str], dict[str, int]]) -> int:
    """Replace a day's rows with these counts per (partner id, area, band) and their rollups."""
    rows = {**rows, **rollups(rows)}
    with transaction.atomic():
        PartnerDayFigures.objects.filter(day=day).delete()
        PartnerDayFigures.objects.bulk_create(
            [
                PartnerDayFigures(partner_id=partner_id, day=day, area=area, band=band, **counts)
                for (partner_id, area, band), counts in rows.items()
            ],
            batch_size=1000,
        )
    return len(rows)


def rollups(rows: dict[tuple[int, str, str], dict[str, int]]) -> dict[tuple[int, str, str], dict[str, int]]:
    """Every area's rows summed per partner and band, and per partner (area and band ANY), so a page
    over every area reads one row per partner and day however many districts there are."""
    summed: dict[tuple[int, str, str], dict[str, int]] = {}
    for (partner_id, area, band), counts in rows.items():
        if (area, band) == ("", ""):
            continue  # the partner-wide message counts: read beside every selection, never summed in
        for key in ((partner_id, ANY, band), (partner_id, ANY, ANY)):
            total = summed.setdefault(key, {})
            for name, value in counts.items():
                total[name] = total.get(name, 0) + value
    return summed


def materialise_recent(*, days: int = 2, now: datetime | None = None) -> int:
    """Today and the days before it (open jobs still change): what the beat job runs."""
    now = now or timezone.now()
    today = timezone.localtime(now).date()
    return sum(materialise_day(today - timedelta(days=back), now=now) for back in range(days))


# --- reading --------------------------------------------------------------------------------------

PERIODS = {"day": 1, "week": 7, "month": 30}
MAX_DAYS = 366


@dataclass(frozen=True)
class ScorecardQuery:
    """What a scorecard page asks for: the last `days` days, grouped by `grain`, optionally one area/band."""

    days: int = 28
    grain: str = "day"
    area: str = ""
    band: str = ""
    until: date | None = None

    @property
    def last_day(self) -> date:
        return self.until or timezone.localdate()

    @property
    def first_day(self) -> date:
        return self.last_day - timedelta(days=self.days - 1)


def _rows(query: ScorecardQuery, *, messages: bool = True) -> QuerySet[PartnerDayFigures]:
    """The rows that add up to the query's selection: an area's own rows, else the rollups (ANY)."""
    selection = Q(area=query.area or ANY)
    if query.band:
        selection &= Q(band=query.band)
    elif not query.area:
        selection &= Q(band=ANY)
    if messages:  # message counts have no area: the partner-wide row is read beside any selection
        selection |= Q(area="", band="")
    return PartnerDayFigures.objects.filter(day__gte=query.first_day, day__lte=query.last_day).filter(
        selection
    )


def _by_period(query: ScorecardQuery, rows: QuerySet[PartnerDayFigures]) -> tuple[QuerySet[Any], str]:
    if query.grain == "day":
        return rows, "day"
    bucket = {"week": TruncWeek("day"), "month": TruncMonth("day")}[query.grain]
    return rows.annotate(bucket=bucket), "bucket"


def _start(moment: date | datetime) -> date:
    return moment.date() if isinstance(moment, datetime) else moment


def _sums(names: Iterable[str] = COUNT_FIELDS) -> dict[str, Any]:
    return {name: Sum(name) for name in names}


def partner_totals(query: ScorecardQuery) -> dict[str, Totals]:
    """Per partner slug, the summed figures of the query's days (one grouped query)."""
    names = dict(Partner.objects.values_list("pk", "slug"))
    grouped = _rows(query).values("partner").annotate(**_sums()).order_by("partner")
    return {names[row["partner"]]: Totals.from_sums(row) for row in grouped}


def partner_series(query: ScorecardQuery) -> dict[str, dict[date, Totals]]:
    """Per partner slug, per day/week/month start, every summed figure (one grouped query)."""
    names = dict(Partner.objects.values_list("pk", "slug"))
    rows, key = _by_period(query, _rows(query))
    series: dict[str, dict[date, Totals]] = {}
    for row in rows.values("partner", key).annotate(**_sums()).order_by(key, "partner"):
        series.setdefault(names[row["partner"]], {})[_start(row[key])] = Totals.from_sums(row)
    return series


def on_time_trend(query: ScorecardQuery) -> dict[str, dict[date, float | None]]:
    """Per partner slug, per day/week/month start, the on-time rate: the trend chart's only figure,
    read as plain tuples (a year by day is thousands of points)."""
    names = dict(Partner.objects.values_list("pk", "slug"))
    rows, key = _by_period(query, _rows(query, messages=False))
    grouped = (
        rows.values("partner", key)
        .annotate(on_time_sum=Sum("on_time"), with_window_sum=Sum("with_window"))
        .order_by(key, "partner")
        .values_list("partner", key, "on_time_sum", "with_window_sum")
    )
    trend: dict[str, dict[date, float | None]] = {}
    for partner, moment, on_time, with_window in grouped:
        trend.setdefault(names[partner], {})[_start(moment)] = on_time / with_window if with_window else None
    return trend


def recommend_partner(*, area: str, band: str, days: int = 28, until: date | None = None) -> list[Candidate]:
    """Which partner to give the next job in this area and band, best first, with the evidence."""
    totals = partner_totals(ScorecardQuery(days=days, area=area, band=band, until=until))
    return recommend({slug: t for slug, t in totals.items() if t.jobs})


FIGURE_COLUMNS = [
    "jobs",
    "on_time_rate",
    "on_time_sample",
    "first_attempt_rate",
    "first_attempt_sample",
    "latency_p50_s",
    "latency_p90_s",
    "silent_minutes_per_job",
    "pod_coverage",
    "conflict_rate",
    "unmatched_rate",
    "jobs_handed_on",
    "cases_caused",
    "cases_per_100_jobs",
    *COUNT_FIELDS,
]


def _figures(t: Totals) -> list[Any]:
    return [
        t.jobs,
        _num(t.on_time_rate),
        t.with_window,
        _num(t.first_attempt_rate),
        t.attempted,
        t.latency_p50,
        t.latency_p90,
        _num(t.silent_minutes_per_job),
        _num(t.pod_coverage),
        _num(t.conflict_rate),
        _num(t.unmatched_rate),
        t.handed_on,
        t.cases,
        _num(t.cases_per_100_jobs),
        *[
            getattr(t, name) if not name.startswith("lat_") else t.latency[int(name[4:])]
            for name in COUNT_FIELDS
        ],
    ]


def csv_rows(query: ScorecardQuery, *, by: str = "period") -> Iterable[list[Any]]:
    """Every figure as CSV rows (header first): per partner and period (the trend), or per partner over
    the whole period (the table), ranked for the next job when the query names an area or a band."""
    if by == "partner":
        yield [
            "partner",
            "first_day",
            "last_day",
            "recommendation_rank",
            "recommendation_score",
            *FIGURE_COLUMNS,
        ]
        totals = partner_totals(query)
        ranked = recommend({p: t for p, t in totals.items() if t.jobs}) if (query.area or query.band) else []
        ranks = {c.partner: (rank, f"{c.score:.4f}") for rank, c in enumerate(ranked, start=1)}
        for partner, t in sorted(totals.items()):
            rank, score = ranks.get(partner, ("", ""))
            yield [
                partner,
                query.first_day.isoformat(),
                query.last_day.isoformat(),
                rank,
                score,
                *_figures(t),
            ]
        return
    yield ["partner", "period_start", *FIGURE_COLUMNS]
    for partner, by_period in sorted(partner_series(query).items()):
        for start, t in sorted(by_period.items()):
            yield [partner, start.isoformat(), *_figures(t)]


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
