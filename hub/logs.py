"""Structured logs: JSON in production, readable in development, a request id on every line, no secrets.

Every logger (Django's, Celery's, Baton's `logging.getLogger(__name__)`) goes through structlog's
formatter: `extra={...}` fields become keys, the request id bound for the current request or task is
added, and `redact` removes credentials and customer contact details before anything is written.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, MutableMapping
from contextlib import AbstractContextManager
from typing import Any

import structlog

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is kept only if it is short and plain, so it cannot smuggle anything into a log line.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{7,127}$")
REDACTED = "[redacted]"

# Keys whose values never reach a log (matched as substrings of the lower-cased key).
SENSITIVE_KEYS = (
    "authorization",
    "api_key",
    "api-key",
    "apikey",
    "secret",
    "password",
    "passwd",
    "token",
    "cookie",
    "signature",
    "email",
    "phone",
    "customer_name",
    "address",
)
# Values that look like credentials or contact details, wherever they appear in a string.
_SCRUBBERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer|token|basic)\s+[A-Za-z0-9._~+/=-]{6,}"), rf"\1 {REDACTED}"),
    (re.compile(r"\bbt_[A-Za-z0-9_-]{10,}"), REDACTED),
    (
        re.compile(
            r"(?i)\b(secret|password|api[_-]?key|token|signature|authorization)(\"?'?\s*[:=]\s*\"?'?)[^\s\"',&;]+"
        ),
        rf"\1\2{REDACTED}",
    ),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"), "[email]"),
    # 9 to 15 digits, optionally +, spaces or dashes between: phone numbers, not dates or small ids.
    (re.compile(r"(?<![\w:.+-])\+?\d(?:[ -]?\d){8,14}(?![\w:.-])"), "[phone]"),
    # Customer tracking tokens travel in the path of the public page and API.
    (re.compile(r"(/t/|/track/)[A-Za-z0-9_-]{8,}"), rf"\1{REDACTED}"),
)


def scrub(text: str) -> str:
    """The text with credentials, e-mail addresses, phone numbers and tracking tokens replaced."""
    for pattern, replacement in _SCRUBBERS:
        text = pattern.sub(replacement, text)
    return text


def _is_sensitive(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in SENSITIVE_KEYS)


def _redact_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {k: REDACTED if _is_sensitive(str(k)) else _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_redact_value(v) for v in value]
    return scrub(value if isinstance(value, str) else str(value))


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: drop sensitive keys, scrub every other value (the message and traceback too)."""
    for key in list(event_dict):
        if key.startswith("_"):
            continue
        event_dict[key] = REDACTED if _is_sensitive(key) else _redact_value(event_dict[key])
    return event_dict


def _drop_request_object(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    # Django attaches the request to its error records; its repr carries the raw path.
    event_dict.pop("request", None)
    return event_dict


SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def logging_config(*, fmt: str, level: str) -> dict[str, Any]:
    """The LOGGING dict: one handler on stderr, rendering JSON (`fmt="json"`) or for a console."""
    renderer: Any = (
        structlog.processors.JSONRenderer(default=str)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*SHARED_PROCESSORS, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "foreign_pre_chain": [*SHARED_PROCESSORS, structlog.stdlib.ExtraAdder()],
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    _drop_request_object,
                    structlog.processors.format_exc_info,
                    redact,
                    renderer,
                ],
            }
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
    }


def request_id_from(header: str | None) -> str:
    """The caller's X-Request-ID when it is sane, else a new one."""
    if header and _SANE_REQUEST_ID.match(header):
        return header
    return uuid.uuid4().hex


def bind_request_id(request_id: str) -> None:
    """Start a fresh log context (a request or a task) carrying this request id."""
    structlog.contextvars.clear_contextvars()
    if request_id:
        structlog.contextvars.bind_contextvars(request_id=request_id)


def current_request_id() -> str:
    """The request id of the request or task this code runs for ("" outside one)."""
    return str(structlog.contextvars.get_contextvars().get("request_id", ""))


def log_context(**values: object) -> AbstractContextManager[None]:
    """Within the block, every log line carries these values (restored afterwards)."""
    return structlog.contextvars.bound_contextvars(**values)
