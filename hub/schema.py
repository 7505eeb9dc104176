"""Shared OpenAPI pieces: the error body every endpoint returns."""

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="Machine-readable code, e.g. invalid, not_found, throttled.")
    message = serializers.CharField(help_text="What went wrong, in words a person can act on.")
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text='Per-field messages, keyed by path ("events[0].occurred_at").',
    )
    references = serializers.ListField(child=serializers.CharField(), required=False)


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    descriptions = {
        400: "Malformed body; `fields` names each bad field.",
        401: "Missing or unknown credentials, or a signature that does not verify.",
        403: "Authenticated but not allowed.",
        404: "Not found, or not held by this partner.",
        409: "Conflicting concurrent request.",
        413: "Body larger than the limit.",
        422: "Idempotency-Key reused with a different body.",
        429: "Rate limit exceeded; see Retry-After.",
    }
    return {code: OpenApiResponse(ErrorSerializer, description=descriptions[code]) for code in codes}


def require_request_bodies(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Every Baton write needs its body; drf-spectacular cannot tell for raw or polymorphic bodies."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation["requestBody"]["required"] = True
    return result


def document_query_errors(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Any operation that takes query parameters may answer 400 (a NUL in one is refused up front)."""
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            takes_query = any(p.get("in") == "query" for p in operation.get("parameters", []))
            if takes_query and "400" not in operation.get("responses", {}):
                operation["responses"]["400"] = {
                    "description": "A query parameter is invalid.",
                    "content": error,
                }
    return result
