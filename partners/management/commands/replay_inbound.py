from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from partners import services
from partners.models import InboundMessage, Partner


def moment(value: str) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None or parsed.tzinfo is None:
        raise CommandError(f"{value!r} is not an ISO 8601 time with an offset.")
    return parsed


class Command(BaseCommand):
    help = "Queue stored partner messages again (by partner, time range and state)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--partner", help="Partner slug.")
        parser.add_argument("--since", type=moment, help="Received at or after (ISO 8601).")
        parser.add_argument("--until", type=moment, help="Received before (ISO 8601).")
        parser.add_argument(
            "--state",
            action="append",
            choices=[s for s in InboundMessage.State.values if s != InboundMessage.State.REJECTED],
            help="Repeatable; default: unmatched and failed.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        partner = None
        if options["partner"]:
            partner = Partner.objects.filter(slug=options["partner"]).first()
            if partner is None:
                raise CommandError(f"No partner {options['partner']!r}.")
        states = options["state"] or [InboundMessage.State.UNMATCHED, InboundMessage.State.FAILED]
        count = services.replay_messages(
            partner=partner, states=states, since=options["since"], until=options["until"]
        )
        self.stdout.write(f"{count} message(s) queued for processing.")
