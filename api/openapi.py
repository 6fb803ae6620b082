"""The OpenAPI document, finished: every error documented as problem details.

FastAPI documents validation errors with its own schema under `application/json`;
ours are `application/problem+json` with the `Problem` schema, and every /v1
route can also answer 401, 403, 404, 409, 413 and 429 — so the document says so.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.problems import PROBLEM_JSON, TITLES, Problem

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
API_ERRORS = (401, 403, 404, 409, 422, 429)
BODY_ERRORS = (413,)
MUTATING = ("post", "put", "patch", "delete")


def _problem(status: int) -> dict:
    return {"description": TITLES[status], "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}


def finish(document: dict) -> dict:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for defs_name, definition in schemas["Problem"].pop("$defs", {}).items():
        schemas.setdefault(defs_name, definition)
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status in list(responses):
                if status.isdigit() and int(status) >= 400:
                    responses[status] = _problem(int(status))
            if path.startswith("/v1/"):
                for status in API_ERRORS + (BODY_ERRORS if method in MUTATING else ()):
                    responses.setdefault(str(status), _problem(status))
            elif "parameters" in operation or "requestBody" in operation:
                responses.setdefault("422", _problem(422))
    return document


def document_problems(app: FastAPI) -> None:
    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = finish(get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes,
            ))
        return app.openapi_schema

    app.openapi = openapi
