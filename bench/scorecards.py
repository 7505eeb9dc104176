"""Partner scorecards over the bench load: materialise the last days, then time the dashboard page.

    DATABASE_URL=postgres://.../baton_bench DJANGO_SETTINGS_MODULE=bench.settings \
        .venv/bin/python bench/scorecards.py [--days 28] [--materialise-days 60] [--requests 200]

Materialises the partner and contact-centre figures of the last `--materialise-days` days (what the
beat jobs and `manage.py scorecards` / `contact_figures` do), then times each dashboard page and CSV.
Server time is measured in-process around Django's full request handling (test client, no network),
so it is the page's own cost: views, queries, template and the figures behind them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django

django.setup()

from django.contrib.auth.models import Group, Permission, User  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from contactcentre import figures as contact_figures  # noqa: E402
from contactcentre.models import ContactDayFigures  # noqa: E402
from partners.models import PartnerDayFigures  # noqa: E402
from partners.services import materialise_day  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=28, help="The period of the main pages (7, 28, 90, 365).")
    parser.add_argument("--materialise-days", type=int, help="Days to materialise first (default: --days).")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--skip-materialise", action="store_true")
    args = parser.parse_args()

    today = timezone.localdate()
    if not args.skip_materialise:
        for name, materialise, model in (
            ("partner", materialise_day, PartnerDayFigures),
            ("contact-centre", contact_figures.materialise_day, ContactDayFigures),
        ):
            timings = []
            for back in range(args.materialise_days or args.days):
                started = time.perf_counter()
                materialise(today - timedelta(days=back))
                timings.append(time.perf_counter() - started)
            print(
                f"materialised {len(timings)} days of {name} figures: {sum(timings):.1f} s in all, "
                f"median {statistics.median(timings):.2f} s, slowest {max(timings):.2f} s per day; "
                f"{model.objects.count()} rows"
            )

    group, _ = Group.objects.get_or_create(name="operations")
    group.permissions.add(Permission.objects.get(content_type__app_label="contactcentre", codename="operate"))
    user, _ = User.objects.get_or_create(username="bench-ops")
    user.groups.add(group)
    client = Client()
    client.force_login(user)
    area = (
        PartnerDayFigures.objects.exclude(area__in=["", "*"]).values_list("area", flat=True).first() or "N1"
    )
    days = args.days
    pages = {
        f"dashboard, {days} days by day": f"/console/dashboard/?days={days}&grain=day",
        f"dashboard, {days} days by week, one area and band": (
            f"/console/dashboard/?days={days}&grain=week&area={area}&band=morning"
        ),
        "dashboard, 90 days by month": "/console/dashboard/?days=90&grain=month",
        "dashboard, 365 days by month": "/console/dashboard/?days=365&grain=month",
        "dashboard, 365 days by day": "/console/dashboard/?days=365&grain=day",
        f"scorecards CSV, {days} days by day": f"/console/dashboard/scorecards.csv?days={days}&grain=day",
        f"contact-centre CSV, {days} days by partner": (
            f"/console/dashboard/contact-centre.csv?days={days}&by=partner"
        ),
    }
    for name, url in pages.items():
        client.get(url)  # warm
        connection.force_debug_cursor = True  # Django resets connection.queries when a request starts
        response = client.get(url)
        if response.streaming:
            b"".join(response.streaming_content)
        queries = len(connection.queries)
        connection.force_debug_cursor = False
        times = []
        for _ in range(args.requests):
            started = time.perf_counter()
            response = client.get(url)
            if response.streaming:
                b"".join(response.streaming_content)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (response.status_code, url)
        print(
            f"{name}: p50 {percentile(times, 0.5):.1f} ms, p99 {percentile(times, 0.99):.1f} ms, "
            f"max {max(times):.1f} ms over {args.requests} requests; {queries} queries"
        )


if __name__ == "__main__":
    main()
