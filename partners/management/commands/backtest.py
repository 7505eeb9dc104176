from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from partners.backtest import run_backtest
from partners.models import SilenceThreshold


class Command(BaseCommand):
    help = (
        "Backtest the ETA model on synthetic history with known lateness: learn on the first part, "
        "predict 2 h and 30 min before each window closes on the rest, beside the partner's ETA alone."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--days", type=int, default=120, help="days of synthetic history")
        parser.add_argument("--per-day", type=int, default=150, help="jobs created per day")
        parser.add_argument("--train-fraction", type=float, default=0.75, help="share of days to learn on")

    def handle(self, *args: Any, **options: Any) -> None:
        result = run_backtest(
            seed=options["seed"],
            days=options["days"],
            per_day=options["per_day"],
            train_fraction=options["train_fraction"],
            thresholds=list(SilenceThreshold.objects.all()),
            default_silence_minutes=settings.BATON["SILENCE_THRESHOLD_SECONDS"] / 60,
            min_samples=settings.BATON["ETA_MIN_SAMPLES"],
            flag_at=settings.BATON["LATE_RISK_FLAG_PERCENT"] / 100,
        )
        for line in result.lines():
            self.stdout.write(line)
