"""All outbound HTTP to partners goes through here: timeouts, backoff on errors and rate limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from partners.adapters.base import PartnerError

CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 15.0


def make_session() -> requests.Session:
    # urllib3 retries idempotent requests on connection errors, 5xx and 429 with exponential
    # backoff, and waits as long as the vendor's Retry-After asks.
    retry = Retry(
        total=4,
        backoff_factor=1.0,
        backoff_max=60,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "HEAD"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    session = requests.Session()
    session.mount("https://", HTTPAdapter(max_retries=retry))
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.headers["User-Agent"] = "Baton/1.0 (+delivery tracking hub)"
    return session


class PartnerHttpClient:
    """The client pull adapters call; keeps the last raw body so it can be stored as received."""

    def __init__(self, session: requests.Session | None = None) -> None:
        self.session = session or make_session()
        self.last_body: bytes = b""
        self.last_status: int | None = None

    def get_json(self, url: str, *, headers: Mapping[str, str] | None = None) -> Any:
        try:
            response = self.session.get(
                url, headers=dict(headers or {}), timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)
            )
        except requests.RequestException as exc:
            raise PartnerError(f"GET {url} failed: {exc}") from exc
        self.last_body = response.content
        self.last_status = response.status_code
        if response.status_code in (401, 403, 404):
            raise PartnerError(f"GET {url} answered {response.status_code}", permanent=True)
        if response.status_code >= 400:
            raise PartnerError(f"GET {url} answered {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            raise PartnerError(f"GET {url} did not return JSON", permanent=True) from exc

    def send_json(
        self, method: str, url: str, *, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> Any:
        """One write to a vendor's API (never retried here: the outbox retries with backoff)."""
        try:
            response = self.session.request(
                method,
                url,
                json=dict(body),
                headers=dict(headers or {}),
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            )
        except requests.RequestException as exc:
            raise PartnerError(f"{method} {url} failed: {exc}") from exc
        self.last_body = response.content
        self.last_status = response.status_code
        if response.status_code in (400, 401, 403, 404, 409, 422):
            raise PartnerError(
                f"{method} {url} answered {response.status_code}: {response.text[:300]}", permanent=True
            )
        if response.status_code >= 400:
            raise PartnerError(f"{method} {url} answered {response.status_code}")
        try:
            return response.json() if response.content else {}
        except ValueError as exc:
            raise PartnerError(f"{method} {url} did not return JSON", permanent=True) from exc
