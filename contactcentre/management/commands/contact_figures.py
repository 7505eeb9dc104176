"""Materialise the contact-centre figures for the last N days (the beat job does the last three)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from contactcentre.figures import materialise_day


class Command(BaseCommand):
    help = "Recompute the contact-centre figures (by day and by partner) of the last --days days (default 3)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=3, help="How many days back from today (1-366).")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"]
        if not 1 <= days <= 366:
            raise CommandError("--days must be between 1 and 366.")
        today = timezone.localdate()
        rows = sum(materialise_day(today - timedelta(days=back)) for back in range(days))
        self.stdout.write(f"Materialised {days} day(s): {rows} row(s).")
