from typing import Any

from django.core.management.base import BaseCommand

from partners.services.sweep import ALERT_ORDER, run_sweep
from tracking.flags import describe


class Command(BaseCommand):
    help = "Run one pass of the flag sweep (what beat runs every minute) and print what it found."

    def handle(self, *args: Any, **options: Any) -> None:
        result = run_sweep()
        for flag in ALERT_ORDER:
            label, _explanation = describe(flag)
            self.stdout.write(
                f"{label} ({flag}): {result.counts.get(flag, 0)} open shipments"
                f" (raised {result.raised.get(flag, 0)}, cleared {result.cleared.get(flag, 0)})"
            )
        self.stdout.write(f"{result.changed} shipments changed; {result.seconds:.2f} s")
