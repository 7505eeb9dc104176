import json
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.management.base import BaseCommand, CommandError, CommandParser

from partners.adapters import REGISTRY
from partners.models import Partner


class Command(BaseCommand):
    help = "Create a partner and print its API key (shown once) and webhook secret as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--adapter", required=True, choices=sorted(REGISTRY))
        parser.add_argument("--kind", required=True, choices=Partner.Kind.values)
        parser.add_argument("--name", help="Display name (defaults to the slug).")
        parser.add_argument("--webhook-secret", default="", help="The secret the vendor issued, as shown.")
        parser.add_argument("--timezone", default="Europe/London", help="For partner times with no offset.")

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["slug"]
        if Partner.objects.filter(slug=slug).exists():
            raise CommandError(f"A partner called {slug!r} already exists.")
        try:
            ZoneInfo(options["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise CommandError(f"Unknown time zone {options['timezone']!r}.") from None
        partner = Partner(
            slug=slug,
            name=options["name"] or slug,
            kind=options["kind"],
            adapter=options["adapter"],
            webhook_secret=options["webhook_secret"],
            timezone=options["timezone"],
        )
        api_key = partner.rotate_api_key()
        partner.full_clean(exclude=["api_key_hash"])
        partner.save()
        self.stdout.write(
            json.dumps(
                {
                    "slug": partner.slug,
                    "adapter": partner.adapter,
                    "kind": partner.kind,
                    "api_key": api_key,
                    "webhook_secret": partner.webhook_secret,
                    "webhook_url": f"/webhooks/{partner.adapter}/{partner.slug}/",
                },
                indent=2,
            )
        )
