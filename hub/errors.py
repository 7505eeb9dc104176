"""One machine-readable error shape for every API response: {"error", "message", "fields"?}."""

from __future__ import annotations

import sys
from typing import Any

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import DataError, IntegrityError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "A request with this Idempotency-Key is still being processed; retry shortly."
    default_code = "conflict"


class Unprocessable(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "The request cannot be processed."
    default_code = "unprocessable"


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error detail into {"events[0].occurred_at": ["..."]}."""
    flat: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):  # a list serializer reports items by index
                flat.update(flatten_errors(value, f"{prefix}[{key}]"))
                continue
            name = key if key != "non_field_errors" else ""
            path = f"{prefix}.{name}" if prefix and name else (prefix or name)
            flat.update(flatten_errors(value, path))
    elif isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            flat.setdefault(prefix or "body", []).extend(str(item) for item in detail)
        else:
            for index, item in enumerate(detail):
                if item:
                    flat.update(flatten_errors(item, f"{prefix}[{index}]"))
    else:
        flat.setdefault(prefix or "body", []).append(str(detail))
    return flat


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A URL no route matches: the API's JSON error under /api/ and /webhooks/, the HTML page elsewhere."""
    if request.path.startswith(("/api/", "/webhooks/")):
        return JsonResponse(error_body("not_found", "Not found."), status=status.HTTP_404_NOT_FOUND)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """An error outside the API views: JSON under /api/ and /webhooks/ (503 when the database is down)."""
    if not request.path.startswith(("/api/", "/webhooks/")):
        return defaults.server_error(request)
    exc = sys.exc_info()[1]
    if isinstance(exc, OperationalError | InterfaceError):
        response = JsonResponse(
            error_body("unavailable", ServiceUnavailable.default_detail),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return JsonResponse(
        error_body("server_error", "Something went wrong on our side; it has been logged."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": code, "message": message}
    if fields:
        body["fields"] = fields
    return body


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is unavailable; retry shortly."
    default_code = "unavailable"


RETRY_AFTER_SECONDS = 30


def as_api_exception(exc: BaseException) -> BaseException:
    """The client's mistake or our outage as an API error, for what Django and Python raise themselves."""
    if isinstance(exc, RecursionError):
        return exceptions.ValidationError({"body": ["The JSON is nested too deeply."]})
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        return exceptions.ValidationError({"body": ["A number has too many digits."]})
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge("The request body is too large.")
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return exceptions.ValidationError({"body": ["Too many form fields."]})
    if (isinstance(exc, ValueError) and "NUL" in str(exc)) or isinstance(exc, UnicodeEncodeError | DataError):
        # PostgreSQL refuses NUL characters and lone surrogates in text; they came from the client.
        return exceptions.ValidationError({"body": ["A value contains a character that cannot be stored."]})
    if isinstance(exc, IntegrityError):
        return Conflict("The request conflicts with data that already exists.")
    if isinstance(exc, OperationalError | InterfaceError):
        return ServiceUnavailable()
    return exc


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    exc = as_api_exception(exc)  # type: ignore[assignment]
    response = drf_exception_handler(exc, context)
    if isinstance(exc, ServiceUnavailable) and response is not None:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        fields = {
            sendable(name): [sendable(problem) for problem in problems]
            for name, problems in flatten_errors(exc.detail).items()
        }
        first_field, first_errors = next(iter(fields.items()))
        message = f"{first_field}: {first_errors[0]}"
        response.data = error_body("invalid", message, fields)
    else:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        response.data = error_body(str(code), sendable(str(exc.detail)))
        if references := getattr(exc, "references", None):
            response.data["references"] = [sendable(str(reference)) for reference in references]
    return response


def sendable(text: str) -> str:
    """Text that can be encoded in a response: an unpaired surrogate the client sent (an unknown field's
    name, a value quoted back) is escaped as \\udXXX instead of failing the response."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
