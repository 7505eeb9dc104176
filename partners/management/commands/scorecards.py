"""Materialise partner scorecard figures for the last N days (the beat job does today and yesterday)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from partners.services import materialise_day


class Command(BaseCommand):
    help = "Recompute the partner scorecard figures of the last --days days (default 2)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=2, help="How many days back from today (1-366).")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"]
        if not 1 <= days <= 366:
            raise CommandError("--days must be between 1 and 366.")
        today = timezone.localdate()
        now = timezone.now()
        rows = sum(materialise_day(today - timedelta(days=back), now=now) for back in range(days))
        self.stdout.write(f"Materialised {days} day(s): {rows} row(s).")
