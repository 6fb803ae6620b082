"""docs/api.md says what the code does: the roles table and the route list."""

from __future__ import annotations

import re
from pathlib import Path

from domain.roles import PERMISSIONS, ROLE_PERMISSIONS, Role

DOC = (Path(__file__).parents[2] / "docs" / "api.md").read_text()


def test_the_roles_table_is_domain_roles():
    header = next(line for line in DOC.splitlines() if line.startswith("| permission |"))
    roles = [cell.strip() for cell in header.strip("|").split("|")[1:]]
    assert roles == [role.value for role in Role]
    rows = {}
    for line in DOC.splitlines():
        match = re.match(r"^\| `([a-z]+:[a-z]+)` \|(.*)\|$", line)
        if match:
            rows[match.group(1)] = [cell.strip() == "✓" for cell in match.group(2).split("|")]
    assert set(rows) == set(PERMISSIONS)
    for permission, cells in rows.items():
        assert cells == [permission in ROLE_PERMISSIONS[role] for role in Role], permission


def test_every_route_is_listed_with_its_permission(tmp_path):
    from api.app import create_app
    from api.services import build_services
    from api.settings import ApiSettings
    from commands.config import EventStoreConfig

    services = build_services(ApiSettings(
        event_store=EventStoreConfig(kind="sqlite", sqlite_path=str(tmp_path / "events.sqlite")), secret_key=b"k"))
    try:
        document = create_app(services=services).openapi()
    finally:
        services.close()
    listed = set(re.findall(r"^\| `(GET|POST|PUT|PATCH|DELETE) ([^`]+)` \| ([^|]+) \|", DOC, re.M))
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            expected = f"`{operation['x-permission']}`" if operation.get("x-permission") in PERMISSIONS else None
            matches = [p for m, route, p in listed if m == method.upper() and route == path]
            assert matches, f"{method.upper()} {path} is not listed in docs/api.md"
            if expected:
                assert matches[0].strip() == expected, f"{method.upper()} {path}: docs say {matches[0]}"
