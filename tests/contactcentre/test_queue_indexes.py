"""On PostgreSQL every flag queue can walk its own partial index (tracking migration 0011).

PostgreSQL uses a partial index only when it can prove the query implies the index's predicate, so
a change to `contactcentre.queues.shipments` that breaks the proof would silently bring back a sort
of every flagged shipment per page (seconds at a million shipments). Here the planner is told to
avoid sequential and bitmap scans, which on a small test table leaves the index as the only way if,
and only if, the predicate is implied.
"""

import pytest
from django.db import connection

from contactcentre import queues

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner (CI's second pass)"),
]


def plans(*querysets, avoid=("seqscan", "bitmapscan")):
    """PostgreSQL's plan for each queryset, with the planner told to avoid these kinds of node."""
    found = []
    with connection.cursor() as cursor:
        for kind in avoid:
            cursor.execute(f"SET LOCAL enable_{kind} = off")
        for queryset in querysets:
            sql, params = queryset.query.sql_with_params()
            cursor.execute(f"EXPLAIN {sql}", params)
            found.append("\n".join(row[0] for row in cursor.fetchall()))
    return found


@pytest.mark.parametrize("slug", ["blind_spots", "late_risk", "eta_passed", "conflicts"])
def test_a_flag_queue_lists_and_counts_from_its_partial_index(slug):
    listed = queues.shipments(slug, queues.Filters())[:50]
    counted = queues.shipments(slug, queues.Filters()).order_by().values("pk")[: queues.COUNT_CAP + 1]
    for plan in plans(listed, counted):
        assert f"shipment_queue_{slug}" in plan, plan


OPEN_CASE_INDEXES = ("case_queue_open_by_owner", "case_queue_open_by_sla", "case_queue_escalated")


@pytest.mark.parametrize("slug", ["my_cases", "unassigned", "past_sla", "escalated"])
def test_a_case_queue_lists_and_counts_from_an_index_of_open_cases_without_sorting(slug, agent):
    listed = queues.cases(slug, queues.Filters(), agent)[:50]
    counted = queues.cases(slug, queues.Filters(), agent).order_by().values("pk")[: queues.COUNT_CAP + 1]
    for plan in plans(listed, counted, avoid=("seqscan", "bitmapscan", "sort")):
        assert any(index in plan for index in OPEN_CASE_INDEXES), plan
        assert "Sort" not in plan, plan
        if slug == "escalated":  # the one condition neither of the other indexes can serve
            assert "case_queue_escalated" in plan, plan
