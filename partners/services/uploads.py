"""CSV uploads: checking rows before they are accepted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hub.errors import flatten_errors
from partners.models import Partner
from partners.serializers import NativeEventSerializer
from partners.services.matching import find_custodies

UPLOAD_FIELDS = {"reference", "status", "occurred_at", "reason", "event_id", "raw_status", "eta", "note"}


def check_upload_rows(partner: Partner, rows: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
    """Validate CSV rows like API events; return a per-row error report (line numbers from 2)."""
    report: list[dict[str, Any]] = []
    held = find_custodies(partner, {row.get("reference", "") for row in rows})
    for line, row in enumerate(rows, start=2):
        data: dict[str, Any] = {k: v for k, v in row.items() if v and k in UPLOAD_FIELDS}
        if row.get("latitude") or row.get("longitude"):
            data["location"] = {"lat": row.get("latitude"), "lng": row.get("longitude")}
        serializer = NativeEventSerializer(data=data)
        if not serializer.is_valid():
            fields = flatten_errors(serializer.errors)
            name, messages = next(iter(fields.items()))
            report.append({"row": line, "message": f"{name}: {messages[0]}", "fields": fields})
        elif data["reference"] not in held:
            message = f"no shipment held by you under {data['reference']!r}"
            report.append({"row": line, "message": message, "fields": {"reference": [message]}})
    return report
