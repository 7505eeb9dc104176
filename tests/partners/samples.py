"""The recorded vendor samples in tests/fixtures/partners/<vendor>/ and how to send them as the vendor does.

Shared by the webhook acceptance tests and the multi-vendor journey; not a test module itself.
"""

import base64
import hashlib
import hmac
import io
import json
import time
import unicodedata
from contextlib import nullcontext
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import time_machine
from django.core.management import call_command

from partners.models import Partner
from tests.factories import CustodyFactory, ShipmentFactory

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "partners"
VENDORS = sorted(p.name for p in FIXTURES.iterdir() if (p / "manifest.json").is_file())

# Where each manifest keeps the credential the vendor issues (named after the vendor's own term).
_SECRET_KEYS = (
    "test_webhook_secret",
    "test_webhook_secret_hex",
    "test_webhook_secret_base64",
    "test_signing_key",
    "test_client_secret",
    "test_value",
)
KINDS = {"samsara": "fleet", "easypost": "carrier", "aftership": "carrier"}
TIMEZONES = {"wolt_drive": "Europe/Berlin"}

# The jobs each vendor's samples are about: (merchant reference, the vendor's own id for the job, which
# the adapter reports under and which the custody stores as partner_reference).
JOBS: dict[str, list[tuple[str, str]]] = {
    "aftership": [("OXF-SHOP-55821", "m7xq2k9vbr3tlw8zd4nh1pcy")],
    "doordash_drive": [("BRS-ORD-55120", "BRS-ORD-55120")],
    "easypost": [("TT481503672GB", "trk_5c1e9a4f7b2d4e08a63f9d21c7b08e54")],
    "gophr": [("SDC-PRN-0042", "5b8e2f41-9c7a-4d13-a0e6-2f71c94b8d05")],
    "onfleet": [("ORD-LDN-10482", "tK9x~Fb3Lq7Rm2Wz8Pc4Nv1S")],
    "samsara": [("MCR-ORD-9001", "8810021"), ("MCR-ORD-9002", "8810022")],
    "stuart": [("CLK-ORD-7781", "184422901")],
    "uber_direct": [("GRN-FLW-2291", "del_Qm7fK2xLr9TbVw4nP8cYzA")],
    "wolt_drive": [("BER-CAF-3310", "66a8f1c2e4b03d5a7c9e1f20")],
}
# Samsara's samples follow one route with two stops; the manifest's `journey` names the stop.
JOURNEY_INDEX = {"route/stop2": 1}
# Headers that carry the vendor's proof (everything else in a manifest is informational).
INFORMATIONAL_HEADERS = {"content-type", "x-samsara-event-type", "x-samsara-request"}
# The samples were signed in June 2025; custody began before the first of them.
CUSTODY_SINCE = datetime(2025, 6, 1, tzinfo=UTC)


@cache
def manifest(vendor: str) -> dict:
    return json.loads((FIXTURES / vendor / "manifest.json").read_text())


def samples(vendor: str) -> list[dict]:
    return sorted(manifest(vendor)["files"], key=lambda entry: entry["arrival_order"])


def body_of(vendor: str, name: str) -> bytes:
    return (FIXTURES / vendor / name).read_bytes()


def vendor_secret(vendor: str) -> str:
    auth = manifest(vendor)["auth"]
    return next(auth[key] for key in _SECRET_KEYS if key in auth)


def auth_headers(entry: dict) -> list[str]:
    return [name for name in entry["headers"] if name.lower() not in INFORMATIONAL_HEADERS]


def create_partner(vendor: str, slug: str | None = None, secret: str | None = None) -> Partner:
    """Onboard as an operator does: `partner_create --webhook-secret <what the vendor issued>`."""
    slug = slug or vendor.replace("_", "-")
    out = io.StringIO()
    call_command(
        "partner_create",
        slug,
        adapter=vendor,
        kind=KINDS.get(vendor, "subcontractor"),
        webhook_secret=vendor_secret(vendor) if secret is None else secret,
        timezone=TIMEZONES.get(vendor, "Europe/London"),
        stdout=out,
    )
    created = json.loads(out.getvalue())
    assert created["webhook_url"] == f"/webhooks/{vendor}/{slug}/"
    partner = Partner.objects.get(slug=slug)
    partner.api_key = created["api_key"]
    return partner


def hold_jobs(partner: Partner, vendor: str) -> list:
    """The vendor's jobs as shipments the partner holds, under the vendor's own ids."""
    shipments = []
    for merchant_ref, job_id in JOBS[vendor]:
        shipment = ShipmentFactory(reference=merchant_ref)
        CustodyFactory(partner=partner, shipment=shipment, partner_reference=job_id, started_at=CUSTODY_SINCE)
        shipments.append(shipment)
    return shipments


def sent_at(headers: dict):
    """Samsara signs a timestamp and refuses it after 5 minutes: deliver at the time it was signed."""
    stamp = headers.get("X-Samsara-Timestamp")
    if stamp is None:
        return nullcontext()
    return time_machine.travel(datetime.fromtimestamp(int(stamp) + 2, UTC), tick=True)


def post_webhook(client, partner: Partner, body: bytes, headers: dict):
    """POST through the Django test client with exactly these headers and bytes."""
    headers = dict(headers)
    content_type = headers.pop("Content-Type", "application/json")
    with sent_at(headers):
        return client.post(
            f"/webhooks/{partner.adapter}/{partner.slug}/",
            data=body,
            content_type=content_type,
            headers=headers,
        )


def sign(vendor: str, body: bytes, secret: str | None = None) -> dict[str, str]:
    """Headers the vendor would send with a body we composed (each vendor's documented scheme)."""
    secret = vendor_secret(vendor) if secret is None else secret
    headers = {"Content-Type": "application/json"}
    if vendor == "onfleet":
        digest = hmac.new(bytes.fromhex(secret), body, hashlib.sha512).hexdigest()
        headers["X-Onfleet-Signature"] = digest
    elif vendor == "uber_direct":
        headers["x-uber-signature"] = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    elif vendor == "easypost":
        key = unicodedata.normalize("NFKD", secret).encode()
        headers["X-Hmac-Signature"] = "hmac-sha256-hex=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    elif vendor == "aftership":
        mac = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        headers["aftership-hmac-sha256"] = base64.b64encode(mac).decode()
    elif vendor == "samsara":
        stamp = str(int(time.time()))
        mac = hmac.new(base64.b64decode(secret), b"v1:" + stamp.encode() + b":" + body, hashlib.sha256)
        headers |= {"X-Samsara-Timestamp": stamp, "X-Samsara-Signature": "v1=" + mac.hexdigest()}
    elif vendor == "gophr":
        headers["API-KEY"] = secret
    elif vendor in ("stuart", "doordash_drive"):
        headers["Authorization"] = secret
    else:
        raise ValueError(f"{vendor} bodies carry their own signature (a JWT): sign the claims instead")
    return headers
