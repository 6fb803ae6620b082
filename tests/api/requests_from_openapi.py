"""Requests for every operation of the app's own OpenAPI document, for the generic route tests.

Path parameters are filled from a dict by name (the API's parameter names are fixed:
cart_id, order_id, product_id, handle, sku, key_id, user_id, customer_id, address_id,
aggregate_id, session_id, fulfilment_id, return_id); bodies are the request schema's first example.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    permission: str | None
    body_example: Any
    has_body: bool
    parameters: tuple[dict, ...]

    def url(self, values: dict[str, str]) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), self.path)

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"


def _resolve(document: dict, schema: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def operations(document: dict) -> list[Operation]:
    found = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            body = operation.get("requestBody")
            example = None
            if body:
                schema = _resolve(document, body["content"]["application/json"]["schema"])
                example = (schema.get("examples") or [{}])[0]
            found.append(Operation(
                method=method, path=path, permission=operation.get("x-permission"), body_example=example,
                has_body=body is not None, parameters=tuple(operation.get("parameters", ())),
            ))
    return found


def send(client, operation: Operation, values: dict[str, str], headers: dict[str, str]):
    query = {}
    for parameter in operation.parameters:
        if parameter["in"] == "query" and parameter.get("required"):
            schema = parameter.get("schema", {})
            query[parameter["name"]] = parameter.get("example", schema.get("default", values.get(parameter["name"], "x")))
        if parameter["in"] == "header" and parameter.get("required") and parameter["name"] not in headers:
            headers = {**headers, parameter["name"]: values.get(parameter["name"], "x")}
    kwargs = {"json": operation.body_example} if operation.has_body else {}
    return client.request(operation.method.upper(), operation.url(values), params=query, headers=headers, **kwargs)
