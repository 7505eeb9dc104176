"""Canonical vocabulary shared by adapters, the timeline engine and the models (no ORM here)."""

from django.db import models


class Status(models.TextChoices):
    PENDING = "pending", "Pending"
    INFO_RECEIVED = "info_received", "Info received"
    ASSIGNED = "assigned", "Courier assigned"
    PICKED_UP = "picked_up", "Picked up"
    IN_TRANSIT = "in_transit", "In transit"
    OUT_FOR_DELIVERY = "out_for_delivery", "Out for delivery"
    ARRIVING = "arriving", "Arriving"
    ATTEMPT_FAILED = "attempt_failed", "Delivery attempt failed"
    AVAILABLE_FOR_PICKUP = "available_for_pickup", "Available for pickup"
    DELIVERED = "delivered", "Delivered"
    EXCEPTION = "exception", "Exception"
    RETURNING = "returning", "Returning to sender"
    RETURNED = "returned", "Returned to sender"
    CANCELLED = "cancelled", "Cancelled"


TERMINAL_STATUSES = frozenset({Status.DELIVERED, Status.RETURNED, Status.CANCELLED})

# Sub-status for `assigned` while the courier waits at the pickup point.
SUB_STATUS_AT_PICKUP = "at_pickup"


class Reason(models.TextChoices):
    RECIPIENT_NOT_HOME = "recipient_not_home", "Recipient not at home"
    ADDRESS_NOT_FOUND = "address_not_found", "Address not found"
    REFUSED = "refused", "Refused by recipient"
    ACCESS_RESTRICTED = "access_restricted", "Access restricted"
    DAMAGED = "damaged", "Damaged"
    LOST = "lost", "Lost"
    WEATHER = "weather", "Weather"
    VEHICLE_ISSUE = "vehicle_issue", "Vehicle issue"
    NO_COURIER = "no_courier", "No courier available"
    CANCELLED_BY_MERCHANT = "cancelled_by_merchant", "Cancelled by merchant"
    CANCELLED_BY_CUSTOMER = "cancelled_by_customer", "Cancelled by customer"
    UNKNOWN = "unknown", "Unknown"


class EventKind(models.TextChoices):
    STATUS = "status", "Status"
    LOCATION = "location", "Location"
    ETA = "eta", "ETA"
    PROOF = "proof", "Proof of delivery"
    HANDOFF = "handoff", "Hand-off"
    NOTE = "note", "Note"
