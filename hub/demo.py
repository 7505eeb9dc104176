"""A believable day of deliveries, reported through the real partner API (used by `manage.py demo`)."""

from __future__ import annotations

import json
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Max
from django.test import Client
from django.utils import timezone

from contactcentre import figures as contact_figures
from contactcentre.models import Case
from partners.models import Custody, InboundMessage, Partner
from partners.services import assign_shipment, materialise_recent
from partners.services.eta import refresh_estimates, refresh_stage_durations
from partners.services.sweep import run_sweep
from tracking.flags import SWEEP_FLAGS
from tracking.models import Shipment, TrackingEvent
from tracking.services import create_shipment

STREETS = [
    ("14 Upper Street, London", "N1 0PQ", 51.5365, -0.1033),
    ("220 Brixton Hill, London", "SW2 1HE", 51.4490, -0.1232),
    ("3 Mare Street, London", "E8 4RP", 51.5416, -0.0577),
    ("88 Lordship Lane, London", "SE22 8HF", 51.4543, -0.0747),
    ("41 Deansgate, Manchester", "M3 2AY", 53.4804, -2.2472),
    ("9 Bold Street, Liverpool", "L1 4DJ", 53.4022, -2.9790),
    ("27 Corn Street, Bristol", "BS1 1HT", 51.4545, -2.5949),
    ("5 Park Row, Leeds", "LS1 5HD", 53.7981, -1.5457),
    ("60 Broad Street, Birmingham", "B1 2HF", 52.4776, -1.9110),
    ("12 Rose Street, Edinburgh", "EH2 2PR", 55.9526, -3.1990),
    ("101 Cowley Road, Oxford", "OX4 1HU", 51.7487, -1.2406),
    ("18 Mill Road, Cambridge", "CB1 2AD", 52.1999, 0.1396),
]
FIRST = [
    "Olivia",
    "Amelia",
    "Isla",
    "Noah",
    "Oliver",
    "Arthur",
    "Leo",
    "Priya",
    "Mohammed",
    "Zara",
    "Chloe",
    "Kwame",
]
LAST = [
    "Smith",
    "Jones",
    "Patel",
    "Williams",
    "Brown",
    "Taylor",
    "Khan",
    "Davies",
    "Evans",
    "Wilson",
    "Okafor",
]
PARTNERS = [
    ("northwind-fleet", "Northwind Own Fleet", Partner.Kind.FLEET),
    ("swift-couriers", "Swift Couriers", Partner.Kind.SUBCONTRACTOR),
    ("zoomgig", "ZoomGig", Partner.Kind.SUBCONTRACTOR),
    ("bigbox-3pl", "BigBox 3PL", Partner.Kind.SUBCONTRACTOR),
    ("parcelnet", "ParcelNet", Partner.Kind.CARRIER),
]
# What happens after the pick-up in each kind of day a job can have.
AFTER_PICKUP = {
    "delivered": ["out_for_delivery", "arriving", "delivered"],
    "out for delivery": ["out_for_delivery"],
    "failed attempt": ["out_for_delivery", "attempt_failed"],
    "redelivered": ["out_for_delivery", "attempt_failed", "out_for_delivery", "delivered"],
    "in transit": ["in_transit"],
    "exception": ["in_transit", "exception"],
}
# Every story the demo tells, with the status it ends in and the flag it must raise (if any).
STORIES: dict[str, tuple[str, str | None]] = {
    "pending": ("pending", None),
    "carrier in transit": ("in_transit", None),
    "carrier out for delivery": ("out_for_delivery", None),
    "carrier delivered": ("delivered", None),
    **{f"fleet {name}": (steps[-1], None) for name, steps in AFTER_PICKUP.items()},
    "handed off, contractor silent": ("picked_up", "unacknowledged"),
    # Flags only the sweep raises (run at the end of the demo), so the console's queues have them.
    "courier silent since out for delivery": ("out_for_delivery", "stale_custodian"),
    "courier silent twice": ("arriving", "stale_custodian"),
    "courier running late": ("out_for_delivery", "eta_passed"),
    "at risk of being late": ("out_for_delivery", "late_risk"),
    **{
        f"subcontracted {name}": (steps[-1], None)
        for name, steps in AFTER_PICKUP.items()
        if name not in ("in transit", "exception")
    },
    "former holder reports after hand-off": ("delivered", "former_custodian"),
    "conflicting reports": ("delivered", "conflict"),
    "delivered far from the address": ("delivered", "far_from_destination"),
}
# How often each story comes up after the first of each (weights out of 100).
WEIGHTS = {
    "pending": 6,
    "carrier in transit": 3,
    "carrier out for delivery": 3,
    "carrier delivered": 3,
    "fleet delivered": 12,
    "fleet out for delivery": 8,
    "fleet failed attempt": 5,
    "fleet redelivered": 4,
    "fleet in transit": 6,
    "fleet exception": 5,
    "handed off, contractor silent": 10,
    "courier silent since out for delivery": 2,
    "courier silent twice": 1,
    "courier running late": 2,
    "at risk of being late": 2,
    "subcontracted delivered": 12,
    "subcontracted out for delivery": 7,
    "subcontracted failed attempt": 5,
    "subcontracted redelivered": 4,
    "former holder reports after hand-off": 2,
    "conflicting reports": 3,
    "delivered far from the address": 2,
}


@dataclass
class DemoResult:
    shipments: int
    events: int
    messages: int
    username: str
    password: str
    tracking_links: list[tuple[str, str, str]]
    stories: dict[str, str]  # shipment reference -> its label in STORIES
    sweep: str = ""  # what the closing sweep found (and so what the rules acted on)


class PartnerDoor:
    """Posts to the partner API exactly as a partner would, through Django's full request stack."""

    def __init__(self, partner: Partner, api_key: str) -> None:
        self.partner = partner
        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {api_key}")

    def post(self, path: str, body: dict[str, Any]) -> None:
        response = self.client.post(path, data=json.dumps(body), content_type="application/json")
        if response.status_code >= 300:
            raise RuntimeError(f"{path} answered {response.status_code}: {response.content[:300]!r}")


def reset() -> None:
    with transaction.atomic():
        Case.objects.filter(shipment__isnull=False).delete()  # a case keeps its shipment from deletion
        TrackingEvent.objects.all().delete()
        Shipment.objects.update(current_custody=None)
        Custody.objects.all().delete()
        Shipment.objects.all().delete()
        InboundMessage.objects.all().delete()
        Partner.objects.filter(slug__in=[slug for slug, _, _ in PARTNERS]).delete()


def seed_day(*, shipments: int = 300, seed: int = 7, now: datetime | None = None) -> DemoResult:
    """Reset the demo data and replay a day of partner traffic through the API."""
    rng = random.Random(seed)
    now = now or timezone.now()
    start_of_day = now.replace(hour=7, minute=0, second=0, microsecond=0)
    if start_of_day > now - timedelta(hours=2):
        start_of_day = now - timedelta(hours=10)
    reset()
    doors: dict[str, PartnerDoor] = {}
    for slug, name, kind in PARTNERS:
        # An operations contact: customers' instructions and agents' chases reach the holder by e-mail.
        partner = Partner(slug=slug, name=name, kind=kind, adapter="native", ops_email=f"ops@{slug}.example")
        key = partner.rotate_api_key()
        partner.save()
        doors[slug] = PartnerDoor(partner, key)

    links: list[tuple[str, str, str]] = []
    stories: dict[str, str] = {}
    for number in range(shipments):
        street, postcode, lat, lng = rng.choice(STREETS)
        window_start = start_of_day + timedelta(hours=rng.randint(1, 11))
        shipment, token = create_shipment(
            reference=f"NW-{now:%Y%m%d}-{number:04d}",
            customer_name=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
            customer_email=f"customer{number}@example.com",
            customer_phone=f"+44 7700 9{number:05d}",
            address=street,
            postcode=postcode,
            latitude=lat + rng.uniform(-0.002, 0.002),
            longitude=lng + rng.uniform(-0.002, 0.002),
            promised_from=window_start,
            promised_until=window_start + timedelta(hours=2),
            allow_cancel=number % 3 == 0,
        )
        # The first shipments tell every story once, so even a small demo shows each of them.
        labels = list(STORIES)
        story = (
            labels[number] if number < len(labels) else rng.choices(labels, [WEIGHTS[k] for k in labels])[0]
        )
        replay_story(shipment, story, number, rng, doors, start_of_day, now)
        stories[shipment.reference] = story
        if len(links) < 8 and story not in {link[1] for link in links}:
            links.append((shipment.reference, story, token))

    materialise_recent(days=2, now=now)  # the dashboard's partner figures for the demo day
    refresh_stage_durations(now=now)  # Baton's ETA windows and late risks, learned from the day
    refresh_estimates(now=now)
    # As beat would within a minute: flags that grow true with time, and the rules' actions on them.
    sweep = run_sweep()
    contact_figures.materialise_recent(days=2, now=now)  # with what the rules sent
    username, password = "agent", secrets.token_urlsafe(9)
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(username=username, defaults={"email": "agent@example.com"})
    user.is_staff = user.is_superuser = True
    user.set_password(password)
    user.save()
    return DemoResult(
        shipments=Shipment.objects.count(),
        events=TrackingEvent.objects.count(),
        messages=InboundMessage.objects.count(),
        username=username,
        password=password,
        tracking_links=links,
        stories=stories,
        sweep=sweep.summary(),
    )


def replay_story(
    shipment: Shipment,
    story: str,
    number: int,
    rng: random.Random,
    doors: dict[str, PartnerDoor],
    start: datetime,
    now: datetime,
) -> None:
    """One shipment's day as its story says: who held it, what they reported, whether they went quiet."""
    if STORIES[story][1] in SWEEP_FLAGS:
        # Times relative to now, so the sweep finds these silent, late or at risk at any time of day.
        start = min(start, now - timedelta(hours=8))
    if story.startswith("carrier "):  # a parcel carrier takes it from the start
        carrier, reference = doors["parcelnet"], f"PN{number:08d}GB"
        assign_shipment(shipment, partner=carrier.partner, partner_reference=reference, started_at=start)
        report(
            carrier,
            reference,
            ["info_received", *AFTER_PICKUP[story.removeprefix("carrier ")]],
            start,
            now,
            rng,
        )
        return
    fleet, fleet_ref = doors["northwind-fleet"], f"NWF-{number:04d}"
    assign_shipment(shipment, partner=fleet.partner, partner_reference=fleet_ref, started_at=start)
    if story == "pending":
        return
    picked_up_at = report(fleet, fleet_ref, ["info_received", "assigned", "picked_up"], start, now, rng)
    if story.startswith("fleet "):
        report(fleet, fleet_ref, AFTER_PICKUP[story.removeprefix("fleet ")], picked_up_at, now, rng)
        return
    # The fleet subcontracts the rest: the blind spot Baton exists for.
    courier_slug = rng.choice(["swift-couriers", "zoomgig", "bigbox-3pl"])
    courier, courier_ref = doors[courier_slug], f"{courier_slug[:3].upper()}-{number:05d}"
    handoff_at = picked_up_at + timedelta(minutes=rng.randint(5, 60))
    if story == "conflicting reports":  # the fleet's driver says the attempt failed just before handing on
        report(fleet, fleet_ref, ["attempt_failed"], handoff_at - timedelta(minutes=12), now, rng, gap=(1, 2))
    fleet.post(
        "/api/partner/v1/handoffs",
        {
            "reference": fleet_ref,
            "to_partner": courier_slug,
            "to_reference": courier_ref,
            "occurred_at": handoff_at.isoformat(),
            "note": "Overflow: subcontracted",
        },
    )
    if story == "handed off, contractor silent":
        return
    # The contractor takes the job under the reference the fleet proposed.
    courier.post("/api/partner/v1/handoffs/confirm", {"reference": courier_ref})
    if story in COURIER_FLAG_STORIES:
        COURIER_FLAG_STORIES[story](shipment, courier, courier_ref, rng, now)
        return
    name = story.removeprefix("subcontracted ") if story.startswith("subcontracted ") else "delivered"
    steps = AFTER_PICKUP[name]
    if story == "conflicting reports":
        steps = ["delivered"]
    far = (shipment.latitude or 0) + 0.03 if story == "delivered far from the address" else None
    delivered_at = report(
        courier,
        courier_ref,
        steps,
        handoff_at,
        now,
        rng,
        gap=(1, 3) if story == "conflicting reports" else (10, 50),
        delivered_at_latitude=far,
        longitude=shipment.longitude,
    )
    if story == "former holder reports after hand-off":  # kept and flagged, changes nothing
        report(
            fleet, fleet_ref, ["out_for_delivery"], max(delivered_at, now - timedelta(minutes=30)), now, rng
        )


def as_received_when_reported(shipment: Shipment, partner: Partner) -> None:
    """The demo replays a day in seconds; a holder that went quiet must have been heard when it
    reported, not when the demo ran (last heard is Baton's receipt time)."""
    events = TrackingEvent.objects.filter(shipment=shipment, partner=partner)
    events.update(received_at=F("occurred_at"))
    heard = events.aggregate(latest=Max("occurred_at"))["latest"]
    Shipment.objects.filter(pk=shipment.pk).update(last_heard_at=heard)


def courier_goes_quiet(
    shipment: Shipment, door: PartnerDoor, reference: str, rng: random.Random, now: datetime
) -> None:
    """Out for delivery two and a half hours ago, silent since: longer than any silence threshold."""
    report(door, reference, ["out_for_delivery"], now - timedelta(minutes=160), now, rng, gap=(1, 3))
    as_received_when_reported(shipment, door.partner)


def courier_goes_quiet_twice(
    shipment: Shipment, door: PartnerDoor, reference: str, rng: random.Random, now: datetime
) -> None:
    """Silent, chased, reports once, then silent again: the rules chase again and escalate."""
    report(door, reference, ["out_for_delivery"], now - timedelta(minutes=240), now, rng, gap=(1, 3))
    as_received_when_reported(shipment, door.partner)
    run_sweep()  # the first silence, as beat saw it at the time
    report(door, reference, ["arriving"], now - timedelta(minutes=135), now, rng, gap=(1, 3))
    as_received_when_reported(shipment, door.partner)


def courier_runs_late(
    shipment: Shipment, door: PartnerDoor, reference: str, rng: random.Random, now: datetime
) -> None:
    """Heard from a moment ago, but the ETA it gave has passed."""
    late = now - timedelta(minutes=5)
    report(door, reference, ["out_for_delivery"], now - timedelta(minutes=30), now, rng, gap=(1, 3), eta=late)


def courier_at_risk(
    shipment: Shipment, door: PartnerDoor, reference: str, rng: random.Random, now: datetime
) -> None:
    """The window closes in a quarter of an hour and the courier's own ETA is after it."""
    eta = now + timedelta(minutes=50)
    report(door, reference, ["out_for_delivery"], now - timedelta(minutes=15), now, rng, gap=(1, 3), eta=eta)
    until = now + timedelta(minutes=15)
    # The risk itself is Baton's estimate, refreshed at the end of the demo (partners.services.eta).
    Shipment.objects.filter(pk=shipment.pk).update(
        promised_from=until - timedelta(hours=2), promised_until=until
    )


COURIER_FLAG_STORIES = {
    "courier silent since out for delivery": courier_goes_quiet,
    "courier silent twice": courier_goes_quiet_twice,
    "courier running late": courier_runs_late,
    "at risk of being late": courier_at_risk,
}


def report(
    door: PartnerDoor,
    reference: str,
    statuses: list[str],
    start: datetime,
    now: datetime,
    rng: random.Random,
    *,
    gap: tuple[int, int] = (10, 50),
    delivered_at_latitude: float | None = None,
    longitude: float | None = None,
    eta: datetime | None = None,
) -> datetime:
    """Report the statuses in order from `start` (minutes apart); return when the last one happened."""
    moment = start
    events = []
    for index, status in enumerate(statuses):
        moment = min(
            moment + timedelta(minutes=rng.randint(*gap)), now - timedelta(minutes=len(statuses) - index)
        )
        event: dict[str, Any] = {
            "reference": reference,
            "event_id": f"{reference}-{index}-{status}",
            "status": status,
            "occurred_at": moment.isoformat(),
        }
        if status == "attempt_failed":
            event["reason"] = rng.choice(["recipient_not_home", "access_restricted", "address_not_found"])
        if status == "exception":
            event["reason"] = rng.choice(["damaged", "vehicle_issue", "weather"])
        if status == "out_for_delivery":
            event["eta"] = (eta or moment + timedelta(minutes=rng.randint(20, 90))).isoformat()
        if status == "delivered" and delivered_at_latitude is not None:
            event["location"] = {"lat": delivered_at_latitude, "lng": longitude}
        events.append(event)
    if rng.random() < 0.5:
        door.post("/api/partner/v1/events", {"events": events})
    else:
        for event in events:
            door.post("/api/partner/v1/events", event)
    return moment
