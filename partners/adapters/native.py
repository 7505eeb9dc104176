"""Baton's own JSON format (`POST /api/partner/v1/events`) and the CSV upload of small contractors.

`parse_event` is the one parser of both: the API and the upload call it when they accept a report,
and the worker calls it again on the stored bytes, so what a partner is told was accepted is
exactly what is recorded, and anything that would not be recorded is refused naming its field.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from partners.adapters.base import (
    Adapter,
    EventKind,
    NormalizedEvent,
    PartnerError,
    Reason,
    Status,
    load_json,
)

EVENT_FIELDS = frozenset(
    {
        "reference",
        "event_id",
        "kind",
        "status",
        "reason",
        "sub_status",
        "raw_status",
        "occurred_at",
        "location",
        "eta",
        "proof",
        "note",
    }
)
KINDS = tuple(kind for kind in EventKind.values if kind != EventKind.HANDOFF)
_STATUSES = frozenset(Status.values)
_REASONS = frozenset(Reason.values)
_IDENTIFIERS = {"reference": 128, "event_id": 200}
_TEXTS = {"sub_status": 32, "raw_status": 200, "note": 1000}
_REQUIRED_BY_KIND = {EventKind.STATUS: "status", EventKind.LOCATION: "location", EventKind.ETA: "eta"}
# RFC 3339's profile of ISO 8601 (a space may stand for the T); fractions past microseconds are dropped.
_MOMENT = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d)(?::(\d\d)(?:[.,](\d{1,9}))?)?(?:([Zz])|([+-])(\d\d):?(\d\d))?"
)
MOMENT_FORMAT = "ISO 8601 date and time, e.g. 2026-11-30T09:05:00Z or 2026-11-30T10:05:00+01:00"


class InvalidEvent(PartnerError):
    """What cannot be recorded, by field: {"occurred_at": ["..."], "events[2].status": ["..."]}."""

    def __init__(self, fields: Mapping[str, list[str]]) -> None:
        self.fields = dict(fields)
        name, problems = next(iter(self.fields.items()))
        super().__init__(f"{name}: {problems[0]}", permanent=True)


class _Refused(ValueError):
    """One field's problem, worded for the partner."""


def parse_moment(value: object, tz: tzinfo | None) -> datetime:
    """An aware datetime from an ISO 8601 date and time; with no offset it is read in `tz`, if given."""
    if not isinstance(value, str):
        raise _Refused(f"Expected an {MOMENT_FORMAT}.")
    match = _MOMENT.fullmatch(value)
    if match is None:
        raise _Refused(f"Not an {MOMENT_FORMAT}.")
    year, month, day, hour, minute, second, fraction, utc, sign, off_h, off_m = match.groups()
    if utc:
        zone: tzinfo | None = UTC
    elif sign:
        if int(off_h) > 23 or int(off_m) > 59:
            raise _Refused(f"The offset {sign}{off_h}:{off_m} does not exist.")
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        zone = timezone(-offset if sign == "-" else offset)
    elif tz is not None:
        zone = tz
    else:
        raise _Refused("Give the UTC offset (Z, or +01:00 and the like): without one the time is ambiguous.")
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=zone,
        )
        in_utc = moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise _Refused(f"Not a real date and time: {exc}.") from None
    if not 2000 <= in_utc.year < 9999:
        raise _Refused("Must be from the year 2000 to 9998.")
    return moment


def _identifier(value: object, longest: int) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _Refused("Expected a string.")
    if value != value.strip():
        raise _Refused("Remove the spaces around it: references are matched exactly.")
    if not value.isprintable():
        raise _Refused("Contains a control or unpaired surrogate character.")
    if len(value) > longest:
        raise _Refused(f"At most {longest} characters.")
    return value


def _text(value: object, longest: int) -> str:
    if not isinstance(value, str):
        raise _Refused("Expected a string.")
    if len(value) > longest:
        raise _Refused(f"At most {longest} characters.")
    _storable(value)
    return value


def _storable(text: str) -> None:
    """PostgreSQL stores neither NUL characters nor unpaired surrogates."""
    if "\x00" in text:
        raise _Refused("Contains a NUL character.")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise _Refused("Contains an unpaired surrogate character.") from None


def _choice(value: object, choices: frozenset[str] | tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _Refused(f"{json_text(value)} is not a valid choice.")
    return value


def _coordinate(value: object, limit: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Refused("Expected a number.")
    if not (isinstance(value, int) or math.isfinite(value)) or not -limit <= value <= limit:
        raise _Refused(f"Must be from -{limit} to {limit}.")
    return float(value)


# Proof keys naming a file in Baton's own storage: only the driver link (which stored the upload) sets
# them; from anyone else they would be signed into links to whatever stored file they named.
STORED_FILE_KEYS = frozenset({"photo", "signature"})
_LINK_KEYS = frozenset({"photo_url", "signature_url"})


def _proof(value: object, stored_files: bool) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        raise _Refused("Expected an object.")
    if not stored_files and STORED_FILE_KEYS & set(value):
        raise _Refused("photo and signature are set by Baton's driver link; send photo_url (https) instead.")
    for key in _LINK_KEYS & set(value):
        if not (isinstance(value[key], str) and value[key].startswith("https://")):
            raise _Refused(f"{key} must be an https:// URL.")
    pending: list[object] = [value]
    while pending:  # not recursive: the JSON may be nested as deep as the parser allowed
        item = pending.pop()
        if isinstance(item, str):
            _storable(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise _Refused("Contains NaN or Infinity, which JSON storage refuses.")
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return value or None


def json_text(value: object) -> str:
    """A value quoted back in an error, with what cannot be stored or sent (NUL, surrogates) escaped."""
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else repr(value)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def parse_event(item: object, *, tz: tzinfo | None = None, stored_files: bool = False) -> NormalizedEvent:
    """One native event as it will be recorded, or InvalidEvent naming every field that will not do.

    `tz` reads times that carry no offset (CSV rows, in the partner's zone); without it an offset is
    required. Text is kept exactly as sent: identifiers with spaces around them are refused rather
    than trimmed, so the reference that is checked is the reference that is matched. `stored_files`
    lets `proof` name files in Baton's storage (the driver link's own reports, and the worker reading
    what was accepted).
    """
    if not isinstance(item, dict):
        raise InvalidEvent({"": ["Expected an object."]})
    errors: dict[str, list[str]] = {name: ["Unknown field."] for name in sorted(set(item) - EVENT_FIELDS)}
    values: dict[str, Any] = {}

    def read(name: str, check: Any, *args: Any) -> None:
        if name in item:
            try:
                values[name] = check(item[name], *args)
            except _Refused as exc:
                errors[name] = [str(exc)]

    for name, longest in _IDENTIFIERS.items():
        read(name, _identifier, longest)
    for name, longest in _TEXTS.items():
        read(name, _text, longest)
    read("kind", _choice, KINDS)
    read("status", _choice, _STATUSES)
    read("reason", _choice, _REASONS)
    read("occurred_at", parse_moment, tz)
    if item.get("eta") is not None:
        read("eta", parse_moment, tz)
    read("proof", _proof, stored_files)
    location = item.get("location")
    if "location" in item:
        if not isinstance(location, dict):
            errors["location"] = ["Expected an object {lat, lng}."]
        else:
            for name in sorted(set(location) - {"lat", "lng"}):
                errors[f"location.{name}"] = ["Unknown field."]
            for name, limit in (("lat", 90), ("lng", 180)):
                try:
                    values[name] = _coordinate(location[name], limit)
                except KeyError:
                    errors[f"location.{name}"] = ["This field is required."]
                except _Refused as exc:
                    errors[f"location.{name}"] = [str(exc)]
    for name in ("reference", "occurred_at"):
        if name not in item:
            errors[name] = ["This field is required."]
    kind = values.get("kind", EventKind.STATUS)
    required = _REQUIRED_BY_KIND.get(kind)
    if required and item.get(required) is None and required not in errors:
        errors[required] = [f"Required for a {kind} event."]
    if values.get("reference") == "":
        errors["reference"] = ["This field may not be blank."]
    if errors:
        raise InvalidEvent(errors)
    return NormalizedEvent(
        reference=values["reference"],
        kind=kind,
        status=values.get("status"),
        reason=values.get("reason"),
        sub_status=values.get("sub_status", ""),
        raw_status=values.get("raw_status") or values.get("status") or kind,
        occurred_at=values["occurred_at"],
        event_id=values.get("event_id", ""),
        latitude=values.get("lat"),
        longitude=values.get("lng"),
        eta=values.get("eta"),
        proof=values.get("proof"),
        note=values.get("note", ""),
    )


def parse_events(
    data: object, *, tz: tzinfo | None = None, max_events: int | None = None, stored_files: bool = False
) -> list[NormalizedEvent]:
    """One event, or a batch `{"events": [...]}`; InvalidEvent names fields as `events[3].status`."""
    if not (isinstance(data, dict) and "events" in data):
        try:
            return [parse_event(data, tz=tz, stored_files=stored_files)]
        except InvalidEvent as exc:
            raise InvalidEvent({name or "body": problems for name, problems in exc.fields.items()}) from None
    errors: dict[str, list[str]] = {name: ["Unknown field."] for name in sorted(set(data) - {"events"})}
    items = data["events"]
    if not isinstance(items, list):
        raise InvalidEvent({**errors, "events": ["Expected a list of events."]})
    if not items:
        raise InvalidEvent({**errors, "events": ["This list may not be empty."]})
    if max_events is not None and len(items) > max_events:
        raise InvalidEvent({**errors, "events": [f"At most {max_events} events per request."]})
    events = []
    for index, item in enumerate(items):
        try:
            events.append(parse_event(item, tz=tz, stored_files=stored_files))
        except InvalidEvent as exc:
            errors.update(
                (f"events[{index}].{name}" if name else f"events[{index}]", problems)
                for name, problems in exc.fields.items()
            )
    if errors:
        raise InvalidEvent(errors)
    return events


class NativeAdapter(Adapter):
    name = "native"

    def parse(self, body: bytes, *, headers: Mapping[str, str], tz: tzinfo) -> list[NormalizedEvent]:
        # As the API accepted it: times must carry their offset, the partner's zone is not consulted.
        # Stored files were refused at the API's door; in a driver link's report they are its own.
        return parse_events(load_json(body), stored_files=True)


# --- CSV --------------------------------------------------------------------------------------------

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
_CSV_EVENT_COLUMNS = frozenset(CSV_COLUMNS) - {"latitude", "longitude"}
# Stored with an upload: the lines its report refused (so no replay applies them later) and the zone
# its times without an offset were read in (so the worker reads them the same, whatever changes since).
REFUSED_LINES_HEADER = "x-baton-refused-lines"
TIMEZONE_HEADER = "x-baton-timezone"


def read_csv_rows(body: bytes) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row, the header being line 1; values stripped."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PartnerError("the file is not UTF-8 text", permanent=True) from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        columns = reader.fieldnames or ()
    except csv.Error as exc:
        raise PartnerError(f"line 1: {exc}", permanent=True) from exc
    missing = {"reference", "status", "occurred_at"} - set(columns)
    if missing:
        raise PartnerError(f"missing column(s): {', '.join(sorted(missing))}", permanent=True)
    return _rows(reader)


def _rows(reader: csv.DictReader[str]) -> Iterator[tuple[int, dict[str, str]]]:
    line = 1
    try:
        for row in reader:
            line += 1
            yield line, {k: (v or "").strip() for k, v in row.items() if isinstance(k, str) and k}
    except csv.Error as exc:  # for example a field over the csv module's 131,072-character limit
        raise PartnerError(f"line {reader.line_num}: {exc}", permanent=True) from exc


def parse_csv_row(row: Mapping[str, str], *, tz: tzinfo) -> NormalizedEvent:
    """A row of the template as the event it records; columns outside the template are ignored."""
    item: dict[str, Any] = {k: v for k, v in row.items() if v and k in _CSV_EVENT_COLUMNS}
    errors: dict[str, list[str]] = {}
    latitude, longitude = row.get("latitude", ""), row.get("longitude", "")
    if latitude or longitude:
        item["location"] = {}
        for column, key, text in (("latitude", "lat", latitude), ("longitude", "lng", longitude)):
            try:
                item["location"][key] = float(text) if text else None
            except ValueError:
                errors[column] = ["Expected a number."]
            if not text:
                errors[column] = ["Give both latitude and longitude, or neither."]
    columns = {"location.lat": "latitude", "location.lng": "longitude"}
    try:
        event = parse_event(item, tz=tz)
    except InvalidEvent as exc:
        errors = {**{columns.get(k, k): v for k, v in exc.fields.items()}, **errors}
    if errors:
        raise InvalidEvent(errors)
    return event


def stored_timezone(headers: Mapping[str, str], default: tzinfo) -> tzinfo:
    try:
        return ZoneInfo(headers[TIMEZONE_HEADER])
    except (KeyError, ValueError, ZoneInfoNotFoundError):
        return default


class CsvAdapter(Adapter):
    """Rows of the CSV template; rows that the upload's report refused are skipped here too."""

    name = "csv"

    def parse(self, body: bytes, *, headers: Mapping[str, str], tz: tzinfo) -> list[NormalizedEvent]:
        refused = {int(n) for n in headers.get(REFUSED_LINES_HEADER, "").split(",") if n.isdigit()}
        zone = stored_timezone(headers, tz)
        events = []
        for line, row in read_csv_rows(body):
            if line in refused:
                continue
            try:
                events.append(parse_csv_row(row, tz=zone))
            except InvalidEvent as exc:
                # Accepted rows parse now as they did then; if one does not, say so rather than skip it.
                raise PartnerError(f"line {line}: {exc.message}", permanent=True) from exc
        return events
