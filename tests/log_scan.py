"""Every log line of the test run, rendered as production renders it, checked for secrets and contact details.

`tests/conftest.py` imports the session fixture, so the whole suite is scanned: a log line that carries
a phone number, an e-mail address, an API key or a vendor's webhook secret fails the run at its end.
"""

import io
import logging
import os
import re
from collections.abc import Iterator

import pytest
from django.conf import settings

from hub.logs import logging_config

# What the factories and fixtures put in: UK mobiles, example.com addresses, Baton API keys.
LEAK_PATTERNS = [
    re.compile(r"(?<![\w.])(?:\+?44 ?7\d{3} ?\d{6}|07\d{3} ?\d{6})(?!\w|\.\d)"),
    re.compile(r"[A-Za-z0-9._%+-]+@example\.(?:com|org|net)"),
    re.compile(r"\bbt_[A-Za-z0-9_-]{20,}"),
]


def known_secrets() -> list[str]:
    from tests.partners.samples import VENDORS, vendor_secret

    return [vendor_secret(vendor) for vendor in VENDORS if len(vendor_secret(vendor)) >= 8]


def leaks(lines: list[str], extra_secrets: list[str] = ()) -> list[str]:
    """The lines that carry something no log may carry."""
    secrets = [*known_secrets(), *extra_secrets]
    return [
        line
        for line in lines
        if any(p.search(line) for p in LEAK_PATTERNS) or any(secret in line for secret in secrets)
    ]


class JsonCapture(logging.Handler):
    """Keeps every record formatted by the production JSON formatter."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        formatter_config = logging_config(fmt="json", level="DEBUG")["formatters"]["structured"]
        factory = formatter_config.pop("()")
        self.setFormatter(factory(**formatter_config))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="session", autouse=True)
def log_scan() -> Iterator[JsonCapture]:
    """Capture the run's logs (and the live worker's) and fail at the end if any line leaks."""
    capture = JsonCapture()
    root = logging.getLogger()
    root.addHandler(capture)
    worker_log = os.path.join(settings.BASE_DIR, "var", "live-worker.log")
    worker_start = os.path.getsize(worker_log) if os.path.exists(worker_log) else 0
    yield capture
    root.removeHandler(capture)
    lines = list(capture.lines)
    if os.path.exists(worker_log):
        with open(worker_log, "rb") as handle:
            handle.seek(worker_start)
            lines += io.TextIOWrapper(handle, errors="replace").read().splitlines()
    leaked = leaks(lines)
    if leaked:
        pytest.fail("log lines carry secrets or contact details:\n" + "\n".join(leaked[:20]), pytrace=False)
