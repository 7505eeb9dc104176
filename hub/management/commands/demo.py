from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from hub.demo import seed_day


class Command(BaseCommand):
    help = "Seed a believable day of deliveries (replacing earlier demo data) through the partner API."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--shipments", type=int, default=300)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args: Any, **options: Any) -> None:
        result = seed_day(shipments=options["shipments"], seed=options["seed"])
        site = settings.SITE_URL
        self.stdout.write(
            f"Seeded {result.shipments} shipments, {result.events} events "
            f"from {result.messages} partner messages.\n"
        )
        self.stdout.write(f"Sweep (the rules acted on what it raised): {result.sweep}\n")
        self.stdout.write(
            f"Agent console: {site}/console/  (user {result.username}, password {result.password})"
        )
        self.stdout.write(f"Admin:         {site}/admin/")
        self.stdout.write(f"API docs:      {site}/api/docs/")
        self.stdout.write("Customer tracking pages:")
        for reference, story, token in result.tracking_links:
            self.stdout.write(f"  {reference} ({story}): {site}/t/{token}")
