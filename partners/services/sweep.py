"""The sweep: flags that grow true with time, computed over every open shipment and stored at rest.

Reconciliation only runs when something arrives, so it cannot notice silence. Every minute (beat)
the sweep computes, in one set-based query over open shipments, which of them are now:

- `stale_custodian`: the holder reported once, then stayed silent longer than its threshold;
- `unacknowledged`: assigned or handed on, and the new holder never reported within its threshold;
- `eta_passed`: the latest ETA (the partner's, else the end of Baton's window) is in the past;
- `late_risk`: the stored prediction (`partners.services.eta`) says the window will likely be missed;

and stores them in `Shipment.alerts`, so lists, filters, queues and the detail view read one truth.
Only shipments whose alerts change are written, and each change is published (`tracking.changes`)
so notifications, merchant webhooks and proactive rules react once, when a flag is raised.

Thresholds (`SilenceThreshold`) are resolved to one cutoff time per (partner or kind, status) in
Python, and sent to the database as a CASE expression: no query per shipment, no join per rule.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BooleanField, Case, DateTimeField, ExpressionWrapper, F, Q, QuerySet, Value, When
from django.utils import timezone

from partners.models import SilenceThreshold
from partners.prediction import threshold_candidates
from tracking import changes
from tracking.flags import Flag
from tracking.models import Shipment
from tracking.statuses import TERMINAL_STATUSES, Status

log = logging.getLogger(__name__)

OPEN_STATUSES = [status for status in Status.values if status not in TERMINAL_STATUSES]
# The order alerts are stored in (stable, so equal sets compare equal as JSON).
ALERT_ORDER = [Flag.STALE_CUSTODIAN, Flag.UNACKNOWLEDGED, Flag.ETA_PASSED, Flag.LATE_RISK]
# Changed shipments are written and published in transactions of this many (rows stay locked meanwhile).
WRITE_CHUNK = 200


@dataclass
class SweepResult:
    """What one pass found: shipments now carrying each flag, and how many changed."""

    counts: dict[str, int] = field(default_factory=dict)
    raised: dict[str, int] = field(default_factory=dict)
    cleared: dict[str, int] = field(default_factory=dict)
    changed: int = 0
    seconds: float = 0.0
    skipped: bool = False

    def summary(self) -> str:
        if self.skipped:
            return "skipped: another sweep is still running"
        parts = [
            f"{flag}: {self.counts.get(flag, 0)} (+{self.raised.get(flag, 0)} -{self.cleared.get(flag, 0)})"
            for flag in ALERT_ORDER
        ]
        return f"{'; '.join(parts)}; {self.changed} shipments changed in {self.seconds:.2f} s"


def _default_minutes() -> float:
    return settings.BATON["SILENCE_THRESHOLD_SECONDS"] / 60


def _cutoffs(rows: Sequence[SilenceThreshold], now: datetime, *, unacknowledged: bool) -> Case:
    """A CASE giving each shipment the time before which its holder's silence is too long.

    For a job not yet acknowledged, rows for "unacknowledged" apply (then any-status rows); for a job
    whose holder has reported, rows for the shipment's status (then any-status rows). The most
    specific row comes first, because a CASE takes the first WHEN that matches.
    """
    whens: list[When] = []
    for row in threshold_candidates(rows, unacknowledged=unacknowledged):
        condition = Q()
        if row.partner_id:
            condition &= Q(current_custody__partner_id=row.partner_id)
        elif row.partner_kind:
            condition &= Q(current_custody__partner__kind=row.partner_kind)
        if row.status and not unacknowledged:
            condition &= Q(status=row.status)
        cutoff = now - timedelta(minutes=row.minutes)
        # Q() matches everything, but When needs a condition: every row has a primary key.
        whens.append(When(condition or Q(pk__isnull=False), then=Value(cutoff)))
    default = Value(now - timedelta(minutes=_default_minutes()))
    return Case(*whens, default=default, output_field=DateTimeField())


def flag_conditions(now: datetime) -> dict[str, Q]:
    """Each sweep flag as a condition on a queryset annotated by `annotate_cutoffs`."""
    late_at = settings.BATON["LATE_RISK_FLAG_PERCENT"] / 100
    return {
        Flag.STALE_CUSTODIAN: Q(
            current_custody__isnull=False,
            last_heard_at__isnull=False,
            last_heard_at__lt=F("stale_cutoff"),
        ),
        Flag.UNACKNOWLEDGED: Q(
            current_custody__isnull=False,
            last_heard_at__isnull=True,
            current_custody__started_at__lt=F("unacknowledged_cutoff"),
        ),
        Flag.ETA_PASSED: Q(eta__lt=now) | Q(eta__isnull=True, eta_latest__lt=now),
        Flag.LATE_RISK: Q(late_risk__gte=late_at),
    }


def candidates(now: datetime, thresholds: Sequence[SilenceThreshold]) -> Q:
    """A necessary condition for any flag, on the shipment's own columns (no join, no CASE).

    Nobody is silent before the shortest threshold has passed, so a holder heard from since then
    cannot be stale whoever it is; this lets the scan discard healthy shipments cheaply.
    """
    shortest = min([row.minutes for row in thresholds], default=_default_minutes())
    shortest = min(shortest, _default_minutes())
    late_at = settings.BATON["LATE_RISK_FLAG_PERCENT"] / 100
    return (
        Q(last_heard_at__lt=now - timedelta(minutes=shortest))
        | Q(last_heard_at__isnull=True, current_custody__isnull=False)
        | Q(eta__lt=now)
        | Q(eta_latest__lt=now)
        | Q(late_risk__gte=late_at)
        | ~Q(alerts=[])
    )


def annotate_cutoffs(
    queryset: QuerySet[Shipment], now: datetime, thresholds: Sequence[SilenceThreshold]
) -> QuerySet[Shipment]:
    """Give each row its silence cutoffs (`stale_cutoff`, `unacknowledged_cutoff`) for `flag_conditions`."""
    return queryset.alias(
        stale_cutoff=_cutoffs(thresholds, now, unacknowledged=False),
        unacknowledged_cutoff=_cutoffs(thresholds, now, unacknowledged=True),
    )


def compute_alerts(
    now: datetime | None = None, counts: dict[str, int] | None = None
) -> dict[int, tuple[list[str], list[str]]]:
    """{shipment id: (stored alerts, alerts now)} for every shipment whose alerts should change.

    `counts`, when given, receives how many open shipments carry each flag now.
    """
    now = now or timezone.now()
    thresholds = list(SilenceThreshold.objects.all())
    conditions = flag_conditions(now)
    queryset = annotate_cutoffs(Shipment.objects.filter(status__in=OPEN_STATUSES), now, thresholds)
    queryset = queryset.annotate(
        **{
            f"is_{flag}": ExpressionWrapper(condition, output_field=BooleanField())
            for flag, condition in conditions.items()
        }
    )
    any_flag = Q()
    for condition in conditions.values():
        any_flag |= condition
    wanted = [f"is_{flag}" for flag in ALERT_ORDER]
    differing: dict[int, tuple[list[str], list[str]]] = {}
    # Only the flagged, and the ones flagged before: a few percent of open shipments at most. The
    # candidates filter is on the shipment's own columns, so the database drops healthy rows while
    # scanning, before joining the few left to their holder; and no server-side cursor (iterator), which
    # would rule out a parallel scan.
    rows = (
        queryset.filter(candidates(now, thresholds))
        .filter(any_flag | ~Q(alerts=[]))
        .order_by()
        .values_list("pk", "alerts", *wanted)
    )
    for pk, stored, *hits in rows:
        now_alerts = [str(flag) for flag, hit in zip(ALERT_ORDER, hits, strict=True) if hit]
        if counts is not None:
            for flag in now_alerts:
                counts[flag] = counts.get(flag, 0) + 1
        if list(stored or []) != now_alerts:
            differing[pk] = (list(stored or []), now_alerts)
    # A finished job carries no alerts (reconciliation clears them; this catches anything missed).
    finished = Shipment.objects.exclude(status__in=OPEN_STATUSES).exclude(alerts=[])
    for pk, stored in finished.values_list("pk", "alerts"):
        differing[pk] = (list(stored or []), [])
    return differing


def _store_and_publish(changes_by_pk: dict[int, tuple[list[str], list[str]]], now: datetime) -> list[int]:
    """Store the new alerts and tell the listeners, chunk by chunk, each chunk in one transaction.

    The listeners' work (notifications, webhooks, proactive rules) commits with the alerts that caused
    it, so a sweep killed midway leaves no flag raised without its actions: the next pass redoes the
    chunks that did not commit. Chunks are small because their rows stay locked until the listeners
    finish (a rule's chase costs ~15 ms). A row that changed since the read (a report arrived) is
    left to the next pass.
    """
    groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[int]] = defaultdict(list)
    for pk, (old, new) in changes_by_pk.items():
        groups[(tuple(old), tuple(new))].append(pk)
    thresholds = list(SilenceThreshold.objects.all())
    conditions = flag_conditions(now)
    written: list[int] = []
    for (old_key, new_key), pks in groups.items():
        old, new = list(old_key), list(new_key)
        raised = set(new) - set(old)
        for start in range(0, len(pks), WRITE_CHUNK):
            chunk = pks[start : start + WRITE_CHUNK]
            queryset: QuerySet[Shipment] = Shipment.objects.filter(pk__in=chunk, alerts=old)
            if raised:
                # Re-check what is raised in the UPDATE itself, so a report that came in since the
                # read (and cleared the silence) is not overwritten by a silence flag.
                queryset = annotate_cutoffs(queryset, now, thresholds).filter(status__in=OPEN_STATUSES)
                for flag in raised:
                    queryset = queryset.filter(conditions[flag])
            with transaction.atomic():
                if not queryset.update(alerts=new):
                    continue
                for shipment in Shipment.objects.filter(pk__in=chunk, alerts=new).select_related(
                    "current_custody__partner"
                ):
                    shipment.alerts = old
                    before = changes.Snapshot.of(shipment)
                    shipment.alerts = new
                    changes.publish(shipment, before)
                    written.append(shipment.pk)
    return written


# Any constant: the key of the PostgreSQL advisory lock that keeps two passes from overlapping.
SWEEP_LOCK_KEY = 7_260_012


@contextmanager
def _only_pass() -> Iterator[bool]:
    """True when no other pass is running (PostgreSQL advisory lock; SQLite runs one process anyway)."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [SWEEP_LOCK_KEY])
        got = bool(cursor.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [SWEEP_LOCK_KEY])


def run_sweep(now: datetime | None = None) -> SweepResult:
    """One pass: compute, store what changed, tell the listeners. Safe to run concurrently with ingest.

    A pass that finds another still running (a burst of new flags makes a pass long: each change is
    acted on) does nothing; beat starts the next one a minute later.
    """
    with _only_pass() as alone:
        if not alone:
            log.info("sweep skipped: another pass is running")
            return SweepResult(skipped=True)
        return _sweep(now)


def _sweep(now: datetime | None) -> SweepResult:
    started = time.perf_counter()
    now = now or timezone.now()
    result = SweepResult()
    result.counts = dict.fromkeys(map(str, ALERT_ORDER), 0)
    differing = compute_alerts(now, result.counts)
    written = _store_and_publish(differing, now)
    for pk in written:
        old, new = differing[pk]
        for flag in set(new) - set(old):
            result.raised[flag] = result.raised.get(flag, 0) + 1
        for flag in set(old) - set(new):
            result.cleared[flag] = result.cleared.get(flag, 0) + 1
    result.changed = len(written)
    result.seconds = time.perf_counter() - started
    log.info("sweep: %s", result.summary())
    return result


__all__ = ["ALERT_ORDER", "OPEN_STATUSES", "SweepResult", "compute_alerts", "flag_conditions", "run_sweep"]
