import signal
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, connection

from partners import services


class Command(BaseCommand):
    help = "Publish newly stored partner messages to the workers in batches (run exactly one, like beat)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--poll",
            type=float,
            default=settings.BATON["RELAY_POLL_MS"] / 1000,
            help="Seconds between idle passes.",
        )
        parser.add_argument("--once", action="store_true", help="One pass, then exit.")

    def handle(self, *args: Any, **options: Any) -> None:
        relay = services.Relay(
            window=timedelta(seconds=settings.BATON["RELAY_WINDOW_SECONDS"]),
            hold=timedelta(milliseconds=settings.BATON["RELAY_HOLD_MS"]),
        )
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while not stopping:
            try:
                published = relay.run_once()
            except DatabaseError:
                # The database restarted or the connection dropped: reconnect on the next pass.
                self.stderr.write("relay: database error, retrying")
                connection.close()
                published = 0
                time.sleep(1)
            if options["once"]:
                break
            if published < settings.BATON["WORKER_BATCH_MESSAGES"]:
                time.sleep(options["poll"])  # let a batch gather, unless a full one is waiting
