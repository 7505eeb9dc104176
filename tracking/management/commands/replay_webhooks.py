"""Send merchant webhooks again: one message, or every one created in a time range."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from tracking import webhooks
from tracking.models import OutboundMessage, WebhookEndpoint
from tracking.outbox import replay_message


class Command(BaseCommand):
    help = (
        "Replay merchant webhooks (same webhook-id): --message ID, or --from/--to [--endpoint ID] [--failed]."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--message", type=int, help="One outbox message id.")
        parser.add_argument("--from", dest="start", help="ISO 8601 date-time with an offset (inclusive).")
        parser.add_argument("--to", dest="end", help="ISO 8601 date-time with an offset (exclusive).")
        parser.add_argument("--endpoint", type=int, help="Only this endpoint's messages.")
        parser.add_argument("--failed", action="store_true", help="Only messages that failed for good.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["message"]:
            message = OutboundMessage.objects.filter(
                pk=options["message"], transport=webhooks.TRANSPORT
            ).first()
            if message is None:
                raise CommandError(f"No merchant webhook message {options['message']}.")
            replay_message(message)
            self.stdout.write(f"Queued message {message.pk} again.")
            return
        start = parse_datetime(options["start"] or "")
        end = parse_datetime(options["end"] or "")
        if start is None or end is None or start.tzinfo is None or end.tzinfo is None or end <= start:
            raise CommandError(
                "Give --message ID, or --from and --to as ISO date-times with offsets, from < to."
            )
        endpoint = None
        if options["endpoint"]:
            endpoint = WebhookEndpoint.objects.filter(pk=options["endpoint"]).first()
            if endpoint is None:
                raise CommandError(f"No webhook endpoint {options['endpoint']}.")
        count = webhooks.replay(endpoint=endpoint, start=start, end=end, failed_only=options["failed"])
        self.stdout.write(f"Queued {count} message(s) again.")
