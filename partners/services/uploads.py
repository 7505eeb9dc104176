"""CSV uploads: each row checked by the parser the worker records it with, refused rows reported."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from partners.adapters.base import NormalizedEvent
from partners.adapters.native import (
    REFUSED_LINES_HEADER,
    TIMEZONE_HEADER,
    InvalidEvent,
    parse_csv_row,
    read_csv_rows,
)
from partners.models import InboundMessage, Partner
from partners.services.inbound import record_inbound
from partners.services.matching import event_counts, find_custodies


@dataclass
class UploadResult:
    """What an upload's response says: the stored message, its rows, and every refused row."""

    message: InboundMessage
    rows: int
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.rows - len(self.errors)

    def errors_by_field(self) -> dict[str, int]:
        return dict(Counter(name for error in self.errors for name in error["fields"]))


def accept_upload(partner: Partner, *, body: bytes, headers: Mapping[str, str]) -> UploadResult:
    """Check every row of a CSV upload and store it with the lines refused; raise PartnerError for a
    file that is not a CSV of the template.

    A row is accepted when `parse_csv_row` reads it (the worker records it with the same function),
    the partner holds or held its shipment, and that shipment has room under MAX_EVENTS_PER_SHIPMENT.
    The full report is kept with the message for `GET /api/partner/v1/uploads/<id>/report.csv`.
    """
    rows, errors = check_upload_rows(partner, read_csv_rows(body))
    message = record_inbound(
        partner,
        channel=InboundMessage.Channel.UPLOAD,
        body=body,
        headers={
            **headers,
            REFUSED_LINES_HEADER: ",".join(str(e["row"]) for e in errors),
            TIMEZONE_HEADER: partner.timezone,
        },
        state=InboundMessage.State.RECEIVED if rows > len(errors) else InboundMessage.State.REJECTED,
        error="; ".join(f"line {e['row']}: {e['message']}" for e in errors[:20])[:2000],
        report=[
            [e["row"], name, text] for e in errors for name, texts in e["fields"].items() for text in texts
        ]
        or None,
    )
    return UploadResult(message=message, rows=rows, errors=errors)


def check_upload_rows(
    partner: Partner, rows: Iterable[tuple[int, Mapping[str, str]]]
) -> tuple[int, list[dict[str, Any]]]:
    """The number of rows and a report of the refused ones (`row` is the line, the header being 1)."""
    parsed: list[tuple[int, NormalizedEvent]] = []
    errors: list[dict[str, Any]] = []
    count = 0
    for line, row in rows:
        count += 1
        try:
            parsed.append((line, parse_csv_row(row, tz=partner.tzinfo)))
        except InvalidEvent as exc:
            errors.append(_refusal(line, exc.fields))
    held = find_custodies(partner, {event.reference for _line, event in parsed})
    ceiling = settings.BATON["MAX_EVENTS_PER_SHIPMENT"]
    counts = event_counts({custody.shipment_id for custody in held.values()})
    for line, event in parsed:
        custody = held.get(event.reference)
        if custody is None:
            message = f"no shipment held by you under {event.reference!r}"
            errors.append({"row": line, "message": message, "fields": {"reference": [message]}})
        elif counts.get(custody.shipment_id, 0) >= ceiling:
            message = (
                f"the shipment under {event.reference!r} holds {ceiling} events, the most a shipment keeps"
            )
            errors.append({"row": line, "message": message, "fields": {"reference": [message]}})
        else:
            counts[custody.shipment_id] = counts.get(custody.shipment_id, 0) + 1
    errors.sort(key=lambda error: error["row"])
    return count, errors


def _refusal(line: int, fields: Mapping[str, list[str]]) -> dict[str, Any]:
    name, problems = next(iter(fields.items()))
    return {"row": line, "message": f"{name}: {problems[0]}", "fields": dict(fields)}


def upload_report(partner: Partner, message_id: int) -> list[list[Any]] | None:
    """The full report of one of the partner's uploads, or None when it has no such upload."""
    found = (
        InboundMessage.objects.filter(pk=message_id, partner=partner, channel=InboundMessage.Channel.UPLOAD)
        .values("report")
        .first()
    )
    return None if found is None else (found["report"] or [])
