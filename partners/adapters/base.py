"""The contract between Baton and a partner's format: verify a request, parse it, fetch (pull partners).

Adapters never touch the ORM. They return `NormalizedEvent`s; `partners.services` matches them to
shipments through the partner's custody and hands them to the reconciliation engine.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, ClassVar, Protocol

from tracking.statuses import EventKind, Reason, Status

__all__ = [
    "Adapter",
    "DeliveryUpdate",
    "EventKind",
    "HttpClient",
    "HttpWriter",
    "InboundRequest",
    "NormalizedEvent",
    "PartnerError",
    "Reason",
    "Status",
    "VerificationError",
    "constant_time_equals",
    "hmac_digest",
    "load_json",
    "parse_coordinates",
    "parse_time",
    "require_header",
    "verify_any_secret",
]


class PartnerError(Exception):
    """A partner's message or API answer could not be used; `permanent` says a retry cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class VerificationError(Exception):
    """The request is not provably from the partner (bad or missing signature, stale timestamp)."""


@dataclass(frozen=True)
class InboundRequest:
    """What a vendor webhook sent, exactly as received. Header names are lower-case."""

    body: bytes
    headers: Mapping[str, str]
    query: Mapping[str, str] = field(default_factory=dict)
    method: str = "POST"
    path: str = "/"
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class NormalizedEvent:
    """One fact from one partner, in Baton's vocabulary.

    `reference` is the partner's own reference for the job (the custody's `partner_reference`) or
    the merchant's reference; `alt_references` lists other identifiers of the same job (merchant
    reference in metadata, the original id of a cloned task or a return leg), tried in order.
    With `applies_to_group`, the event concerns every job of `group_reference` (a route) or, when
    that is empty, of `vehicle_reference` (a vehicle) that was held and not yet ended at the time.
    `occurred_at` is aware; None means the source gave no time (receipt time is used).
    `proof` uses the keys `signature_url`, `photo_urls` (a list) and `recipient_name` (first name).
    """

    reference: str
    kind: str = EventKind.STATUS
    status: str | None = None
    reason: str | None = None
    sub_status: str = ""
    raw_status: str = ""
    occurred_at: datetime | None = None
    event_id: str = ""
    alt_references: tuple[str, ...] = ()
    group_reference: str = ""
    vehicle_reference: str = ""
    applies_to_group: bool = False
    latitude: float | None = None
    longitude: float | None = None
    eta: datetime | None = None
    proof: Mapping[str, Any] | None = None
    note: str = ""

    @property
    def references(self) -> tuple[str, ...]:
        return tuple(r for r in (self.reference, *self.alt_references) if r)


class HttpClient(Protocol):
    """The seam `partners/http.py` provides to pull adapters (timeouts, backoff, rate limits)."""

    def get_json(self, url: str, *, headers: Mapping[str, str] | None = None) -> Any: ...


class HttpWriter(Protocol):
    """The seam `partners/http.py` provides to adapters that change a delivery at the vendor."""

    def send_json(
        self, method: str, url: str, *, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> Any: ...


@dataclass(frozen=True)
class DeliveryUpdate:
    """What the customer asked for a job: `kind` is instructions, reschedule or cancel."""

    kind: str
    instructions: str = ""
    window_from: datetime | None = None
    window_until: datetime | None = None
    reason: str = ""


class Adapter:
    """A partner format. Subclasses set `name`, and override `verify` and `parse`."""

    name: ClassVar[str]
    # True for partners with a pull API that `fetch` implements.
    can_fetch: ClassVar[bool] = False

    def verify(self, request: InboundRequest, secrets: Sequence[str]) -> None:
        """Raise VerificationError unless the request is signed with one of `secrets`."""
        # Refuse by default: a format with no webhook (native, CSV) must not open an unauthenticated door.
        raise VerificationError(f"{self.name} has no webhook; use the partner API with an API key")

    def parse(self, body: bytes, *, headers: Mapping[str, str], tz: tzinfo) -> list[NormalizedEvent]:
        """Turn one message into events; `tz` is the partner's zone for times with no offset."""
        raise NotImplementedError

    def challenge(self, request: InboundRequest) -> str | None:
        """Answer to a vendor's URL-ownership handshake (a GET), or None if the vendor has none."""
        return None

    def fetch(
        self, client: HttpClient, *, config: Mapping[str, Any], reference: str, tz: tzinfo
    ) -> list[NormalizedEvent]:
        """Pull the current history of one job from the vendor's API."""
        raise PartnerError(f"{self.name} has no pull API", permanent=True)

    def can_update(self, config: Mapping[str, Any], kind: str) -> bool:
        """Whether `update_delivery` can pass this kind of request with these credentials."""
        return False

    def update_delivery(
        self, client: HttpWriter, *, config: Mapping[str, Any], reference: str, update: DeliveryUpdate
    ) -> str:
        """Change the job at the vendor (optional); returns the vendor's id for the change or ""."""
        raise PartnerError(f"{self.name} cannot update a delivery", permanent=True)


# --- helpers shared by adapters -------------------------------------------------------------


def constant_time_equals(expected: str | bytes, received: str | bytes | None) -> bool:
    if received is None:
        return False
    a = expected.encode() if isinstance(expected, str) else expected
    b = received.encode() if isinstance(received, str) else received
    return hmac.compare_digest(a, b)


def require_header(request: InboundRequest, name: str) -> str:
    value = request.headers.get(name.lower(), "").strip()
    if not value:
        raise VerificationError(f"missing {name} header")
    return value


def verify_any_secret(
    received: str | Sequence[str], secrets: Sequence[str], expected: Callable[[str], str | None], *, what: str
) -> None:
    """Accept when what one of the secrets yields (two are valid during rotation) equals a received value.

    `expected(secret)` returns the signature or credential that secret gives, or None when the
    secret cannot serve this scheme (for example a secret that is not hex where hex is required).
    """
    values = [received] if isinstance(received, str) else list(received)
    for secret in secrets:
        want = expected(secret) if secret.strip() else None
        if want is not None and any(constant_time_equals(want, value) for value in values):
            return
    raise VerificationError(f"{what} does not match the partner's webhook secret")


def hmac_digest(key: bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(key, message, getattr(hashlib, algorithm)).digest()


def load_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:  # ValueError: also a number over 4,300 digits
        raise PartnerError(f"body is not valid JSON: {exc}", permanent=True) from exc
    except RecursionError:
        raise PartnerError("body is not valid JSON: nested too deeply", permanent=True) from None


_EPOCH_MS_THRESHOLD = 10**11  # epoch seconds stay below this until the year 5138


def parse_time(value: Any, tz: tzinfo = UTC) -> datetime | None:
    """Parse epoch seconds or milliseconds (number or digit string) or ISO 8601.

    A time with no offset is the partner's local wall clock, so it is read in `tz`.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise PartnerError(f"not a time: {value!r}", permanent=True)
    if isinstance(value, int | float) or (isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value)):
        number = float(value)
        if number >= _EPOCH_MS_THRESHOLD:
            number /= 1000
        return datetime.fromtimestamp(number, UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise PartnerError(f"not a time: {value!r}", permanent=True) from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
    raise PartnerError(f"not a time: {value!r}", permanent=True)


def parse_coordinates(value: Any, *, order: str = "latlng") -> tuple[float, float] | None:
    """Read `[a, b]` in the given order, `{lat, lng|lon|longitude}`, or "lat,lng" strings."""
    if value is None or value == "" or value == []:
        return None
    try:
        if isinstance(value, Mapping):
            lat = value.get("lat", value.get("latitude"))
            lng = value.get("lng", value.get("lon", value.get("longitude")))
            if lat is None or lng is None:
                return None
            return float(lat), float(lng)
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")]
        if value[0] in (None, "") or value[1] in (None, ""):
            return None
        first, second = float(value[0]), float(value[1])
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise PartnerError(f"not a coordinate: {value!r}", permanent=True) from exc
    return (first, second) if order == "latlng" else (second, first)
