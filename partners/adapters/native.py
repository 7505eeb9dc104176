"""Baton's own JSON format (`POST /api/partner/v1/events`) and the CSV upload of small contractors."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import tzinfo
from typing import Any

from partners.adapters.base import (
    Adapter,
    EventKind,
    NormalizedEvent,
    PartnerError,
    Reason,
    Status,
    load_json,
    parse_time,
)

# The columns of the CSV template, in order; README "CSV upload" documents them.
CSV_COLUMNS = (
    "reference",
    "status",
    "occurred_at",
    "reason",
    "event_id",
    "raw_status",
    "latitude",
    "longitude",
    "eta",
    "note",
)
_REASONS = ("", *Reason.values)


def event_from_mapping(item: Mapping[str, Any], tz: tzinfo) -> NormalizedEvent:
    """One native event (already validated by the API serializer, or a CSV row)."""
    location = item.get("location") or {}
    lat = location.get("lat", item.get("latitude"))
    lng = location.get("lng", item.get("longitude"))
    kind = item.get("kind") or EventKind.STATUS
    return NormalizedEvent(
        reference=str(item["reference"]),
        kind=kind,
        status=item.get("status") or None,
        reason=item.get("reason") or None,
        sub_status=item.get("sub_status") or "",
        raw_status=item.get("raw_status") or item.get("status") or kind,
        occurred_at=parse_time(item.get("occurred_at"), tz),
        event_id=str(item.get("event_id") or ""),
        latitude=float(lat) if lat not in (None, "") else None,
        longitude=float(lng) if lng not in (None, "") else None,
        eta=parse_time(item.get("eta"), tz),
        proof=item.get("proof") or None,
        note=item.get("note") or "",
    )


class NativeAdapter(Adapter):
    name = "native"

    def parse(self, body: bytes, *, headers: Mapping[str, str], tz: tzinfo) -> list[NormalizedEvent]:
        data = load_json(body)
        items = data.get("events") if isinstance(data, dict) and "events" in data else [data]
        if not isinstance(items, list):
            raise PartnerError("`events` must be a list", permanent=True)
        try:
            return [event_from_mapping(item, tz) for item in items]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PartnerError(f"not a Baton event: {exc}", permanent=True) from exc


def read_csv_rows(body: bytes) -> list[dict[str, str]]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PartnerError("the file is not UTF-8 text", permanent=True) from exc
    reader = csv.DictReader(io.StringIO(text))
    missing = {"reference", "status", "occurred_at"} - set(reader.fieldnames or ())
    if missing:
        raise PartnerError(f"missing column(s): {', '.join(sorted(missing))}", permanent=True)
    try:
        return [{k: (v or "").strip() for k, v in row.items() if k} for row in reader]
    except csv.Error as exc:  # for example a field over the csv module's 131,072-character limit
        raise PartnerError(f"line {reader.line_num}: {exc}", permanent=True) from exc


# Stored with an upload: the lines its report refused, so no replay applies them later.
REFUSED_LINES_HEADER = "x-baton-refused-lines"


class CsvAdapter(Adapter):
    """Rows of the CSV template; rows that the upload's report refused are skipped here too."""

    name = "csv"

    def parse(self, body: bytes, *, headers: Mapping[str, str], tz: tzinfo) -> list[NormalizedEvent]:
        refused = {int(n) for n in headers.get(REFUSED_LINES_HEADER, "").split(",") if n.isdigit()}
        events = []
        for line, row in enumerate(read_csv_rows(body), start=2):
            if line in refused:
                continue
            # Only the template's columns: an extra `kind` or `proof` column must not set what Baton decides.
            fields = {k: v for k, v in row.items() if k in CSV_COLUMNS}
            if fields.get("status") not in Status.values or (fields.get("reason") or "") not in _REASONS:
                continue  # the upload's report refused this row
            try:
                events.append(event_from_mapping(fields, tz))
            except (KeyError, ValueError, PartnerError):
                continue
        return events
