"""The transports the core provides: e-mail, SMS, and guarded HTTP POST for webhook-like channels."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3
from django.conf import settings
from django.core.mail import EmailMessage
from django.utils.module_loading import import_string
from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter

from tracking.models import OutboundMessage
from tracking.outbox import SendError, Sent, UnsafeURL, check_public_url

log = logging.getLogger(__name__)


def send_email(message: OutboundMessage) -> Sent:
    """Through Django's e-mail backend (SMTP, console, or a provider's through django-anymail)."""
    email = EmailMessage(
        subject=message.subject,
        body=message.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.recipient],
        headers={"Auto-Submitted": "auto-generated", **message.payload.get("headers", {})},
    )
    try:
        email.send(fail_silently=False)
    except (OSError, ValueError) as exc:  # SMTP and provider errors; a bad address is permanent
        permanent = isinstance(exc, ValueError)
        raise SendError(f"e-mail not accepted: {exc}", permanent=permanent) from exc
    anymail = getattr(email, "anymail_status", None)
    return Sent(external_id=str(getattr(anymail, "message_id", "") or ""))


class SmsProvider:
    """Sends one text message; raise SendError on failure. Chosen by the `SMS_BACKEND` setting."""

    def send(self, to: str, body: str) -> Sent:
        raise NotImplementedError


class ConsoleSmsProvider(SmsProvider):
    """For development: the message goes to the log, nowhere else."""

    def send(self, to: str, body: str) -> Sent:
        log.info("SMS to %s…: %s", to[:4], body)
        return Sent(response="console")


class TwilioSmsProvider(SmsProvider):
    """Twilio's Messages API (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM)."""

    def send(self, to: str, body: str) -> Sent:
        sid = settings.TWILIO_ACCOUNT_SID
        try:
            response = requests.post(
                f"https://api.twilio.com/2010-04-01/Accounts/{sid}/Messages.json",
                data={"To": to, "From": settings.TWILIO_FROM, "Body": body},
                auth=(sid, settings.TWILIO_AUTH_TOKEN),
                timeout=(3.05, 10),
            )
        except requests.RequestException as exc:
            raise SendError(f"SMS provider unreachable: {exc}") from exc
        if response.status_code >= 400:
            raise SendError(
                f"SMS provider answered {response.status_code}",
                permanent=response.status_code in (400, 401, 403, 404),
                status_code=response.status_code,
                response=response.text[:500],
            )
        return Sent(status_code=response.status_code, external_id=str(response.json().get("sid", "")))


def sms_provider() -> SmsProvider:
    provider: SmsProvider = import_string(settings.SMS_BACKEND)()
    return provider


def send_sms(message: OutboundMessage) -> Sent:
    return sms_provider().send(message.recipient, message.body)


class PinnedAddressAdapter(HTTPAdapter):
    """Connects to the address the SSRF check approved, so DNS cannot change between check and connect.

    The URL's host is replaced by the address; the Host header, TLS SNI and certificate check keep
    the host name, so HTTPS still verifies the certificate of the name the merchant registered.
    """

    def __init__(self, hostname: str, address: str, *, tls: bool) -> None:
        self.hostname, self.address, self.tls = hostname, address, tls
        super().__init__(max_retries=0)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        if self.tls:
            pool_kwargs.update(server_hostname=self.hostname, assert_hostname=self.hostname)
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        parts = urlsplit(request.url or "")
        host = f"[{self.address}]" if ":" in self.address else self.address
        request.url = urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))
        request.headers["Host"] = parts.netloc.rpartition("@")[2]
        return super().send(request, *args, **kwargs)


EXCERPT_CHARACTERS = 500


def _excerpt(response: Response) -> str:
    """The start of the answer, for the attempt log: one read of what has arrived, never the rest, so
    neither a huge nor a trickling answer holds the worker."""
    try:
        start = response.raw.read1(4 * EXCERPT_CHARACTERS, decode_content=True)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
        start = b""  # the status line arrived; the excerpt is only for people
    finally:
        response.close()
    return start.decode(response.encoding or "utf-8", errors="replace")[:EXCERPT_CHARACTERS]


def post_json(url: str, body: bytes, headers: Mapping[str, str], *, timeout: float = 10.0) -> Sent:
    """POST to a URL outside Baton: re-checked against private addresses, sent to the checked address,
    no redirects, timeouts set."""
    try:
        addresses = check_public_url(url)
    except UnsafeURL as exc:
        raise SendError(str(exc), permanent=True) from exc
    parts = urlsplit(url)
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: the request goes where it was checked
    session.mount(
        f"{parts.scheme}://",
        PinnedAddressAdapter(parts.hostname or "", addresses[0], tls=parts.scheme == "https"),
    )
    try:
        response = session.post(
            url,
            data=body,
            headers={"Content-Type": "application/json", "User-Agent": "Baton", **headers},
            timeout=(3.05, timeout),
            allow_redirects=False,
            stream=True,  # read only the excerpt: a receiver's answer may be any size
        )
        excerpt = _excerpt(response)
    except requests.RequestException as exc:
        raise SendError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        session.close()
    if not 200 <= response.status_code < 300:
        raise SendError(
            f"the receiver answered {response.status_code}",
            status_code=response.status_code,
            response=excerpt,
        )
    return Sent(status_code=response.status_code, response=excerpt)
