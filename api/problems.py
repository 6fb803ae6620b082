"""Errors as RFC 9457 problem details (`application/problem+json`).

Every error the API returns has the same shape: a stable `code` (part of the public
contract, never renamed), the `field` at fault when there is one, and a `reason` a
person can act on. The HTTP status follows from the error's family; nothing that a
client sends can turn into a 5xx.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.errors import Conflict, DomainError, InsufficientStock, InvalidTransition, NotFound

log = logging.getLogger("trafi.api")

PROBLEM_JSON = "application/problem+json"

# Codes whose status is not their family's. Everything else: NotFound 404, Conflict-like 409, other 422.
STATUS_BY_CODE = {
    "auth.invalid_credentials": 401,
    "auth.missing_credentials": 401,
    "auth.invalid_token": 401,
    "auth.forbidden": 403,
    "access.owner_required": 403,
    "auth.wrong_key_kind": 403,
    "idempotency.key_reused": 422,
    # A ChangeSet in the wrong state for the request, or blocked by the store's guardrails now.
    "changeset.approval_decided": 409,
    "changeset.approval_expired": 409,
    "changeset.not_pending_approval": 409,
    "changeset.not_approved": 409,
    "changeset.not_live": 409,
    "changeset.not_expired": 409,
    "changeset.guardrails_blocked": 409,
    "query.read_model_behind": 409,
    "request.too_large": 413,
    "rate_limited": 429,
    "auth.scope_escalation": 403,
    # The address or wishlist item named in the path is not there: a missing resource.
    "customer.unknown_address": 404,
    "wishlist.unknown_item": 404,
    # Payments: a refused card is the buyer's to fix; an unreachable provider is nobody's
    # fault here and safe to retry (the same idempotency keys go out again).
    "payment.declined": 402,
    "payment.provider_unavailable": 502,
    "webhook.invalid_signature": 400,
}

TITLES = {
    400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
    402: "Payment required", 406: "Not acceptable", 409: "Conflict", 413: "Content too large", 415: "Unsupported media type",
    422: "Unprocessable content", 429: "Too many requests", 500: "Internal server error",
    502: "Bad gateway", 503: "Service unavailable",
}


class FieldError(BaseModel):
    field: str | None = Field(description="Dotted path of the offending field, e.g. `body.lines.0.quantity`")
    reason: str
    code: str


class Problem(BaseModel):
    """An error, as RFC 9457 problem details plus Trafi's stable `code`, `field` and `reason`."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "type": "https://trafi.dev/problems/stock.insufficient", "title": "Conflict", "status": 409,
        "detail": "only 2 of MUG-01 available, 3 requested", "code": "stock.insufficient",
        "field": "quantity", "reason": "only 2 of MUG-01 available, 3 requested", "request_id": "9f1c2d3e4b5a6978",
    }]})

    type: str = Field(description="URI naming the problem type: https://trafi.dev/problems/<code>")
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable, machine-readable error code")
    field: str | None = Field(default=None, description="The request field at fault, if any")
    reason: str = Field(description="What is wrong, for a person")
    request_id: str | None = None
    errors: list[FieldError] | None = Field(default=None, description="Every field error, for validation problems")


def status_for(error: DomainError) -> int:
    if error.code in STATUS_BY_CODE:
        return STATUS_BY_CODE[error.code]
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, (Conflict, InvalidTransition, InsufficientStock)):
        return 409
    return 422


def problem_body(status: int, code: str, reason: str, *, field: str | None = None,
                 request_id: str | None = None, errors: list[dict] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"https://trafi.dev/problems/{code}", "title": TITLES.get(status, "Error"), "status": status,
        "detail": reason, "code": code, "field": field, "reason": reason, "request_id": request_id,
    }
    if errors is not None:
        body["errors"] = errors
    return body


def problem_response(
    request: Request | None, status: int, code: str, reason: str, *, field: str | None = None,
    errors: list[dict] | None = None, headers: dict[str, str] | None = None,
) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None) if request is not None else None
    body = problem_body(status, code, reason, field=field, request_id=request_id, errors=errors)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


class ApiProblem(Exception):
    """An error raised by the API layer itself (authentication, permissions, limits)."""

    def __init__(self, status: int, code: str, reason: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(reason)
        self.status, self.code, self.reason, self.field, self.headers = status, code, reason, field, headers


def _location(loc: tuple) -> str:
    return ".".join(str(part) for part in loc)


def _field_errors(errors: list[dict]) -> list[dict]:
    """pydantic's errors (of a request, or of a command built from one) as problem field errors."""
    return [
        {"field": _location(e.get("loc", ())) or None, "reason": e.get("msg", "invalid"),
         "code": f"validation.{e.get('type', 'invalid')}"}
        for e in errors
    ]


def _validation_problem(request: Request, errors: list[dict]) -> JSONResponse:
    first = errors[0] if errors else {"field": None, "reason": "invalid request", "code": "validation.invalid"}
    return problem_response(request, 422, first["code"], first["reason"], field=first["field"], errors=errors)


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, error: DomainError):
        headers = {"Retry-After": "1"} if error.code == "query.read_model_behind" else None
        return problem_response(request, status_for(error), error.code, error.reason, field=error.field, headers=headers,
                                errors=getattr(error, "errors", None))

    @app.exception_handler(ApiProblem)
    async def api_problem(request: Request, error: ApiProblem):
        return problem_response(request, error.status, error.code, error.reason, field=error.field, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError):
        return _validation_problem(request, _field_errors(error.errors()))

    @app.exception_handler(ValidationError)
    async def command_validation_error(request: Request, error: ValidationError):
        # A command built from request data refused a value the request model let through.
        return _validation_problem(request, _field_errors(error.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        code = {404: "route.not_found", 405: "route.method_not_allowed"}.get(error.status_code, f"http.{error.status_code}")
        return problem_response(request, error.status_code, code, str(error.detail), headers=getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception):
        # A bug or an outage, never the client's input: logged in full with the request id.
        log.exception("unhandled error", extra={"request_id": getattr(request.state, "request_id", None)})
        return problem_response(request, 500, "internal", "an unexpected error occurred; it has been logged")


ERROR_STATUSES = (400, 401, 403, 404, 409, 413, 422, 429)


def error_responses(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI `responses=` entries: each status documented as a Problem."""
    return {status: {"model": Problem, "description": TITLES[status]} for status in statuses}
