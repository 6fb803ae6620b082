"""compose.yaml is a valid Compose file whose every Trafi command is one the `trafi` CLI accepts.

The file is checked against the Compose Specification's JSON schema (shared/data, beside the repo)
and against the code: each Trafi service's `command` goes through the real argument parser, names
projections that are registered, and the distributed shape has the parts docs/deploy.md describes.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml
from jsonschema.validators import validator_for

from api.cli import build_parser
from projections import registry

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
SCHEMA = ROOT.parent / "shared" / "data" / "compose-spec.json"
IMAGE = "trafi-core:latest"
ENTRYPOINT = ["trafi"]  # the Dockerfile's: compose commands are the arguments of `trafi`
LOG_ONLY = {"audit_chain", "outbound_webhooks"}  # need the log's total order (see compose.yaml)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def trafi_services(compose: dict) -> dict[str, dict]:
    return {name: s for name, s in compose["services"].items() if s.get("image") == IMAGE or "build" in s}


def command_args(service: dict) -> list[str]:
    command = service.get("command")
    if command is None:
        return dockerfile_instruction("CMD")
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def parse(args: list[str]):
    """The parsed `trafi` arguments, or a readable reason why the CLI refuses them."""
    try:
        return build_parser().parse_args(args), None
    except SystemExit as exit_:
        return None, f"`trafi {shlex.join(args)}` is refused by the CLI (exit {exit_.code})"


def command_problems(compose: dict) -> list[str]:
    """Every way a Trafi service's command does not fit the CLI and the projection registry."""
    problems = []
    registered = set(registry.all_projections())
    for name, service in trafi_services(compose).items():
        if service.get("entrypoint") not in (None, ENTRYPOINT):
            problems.append(f"{name}: overrides the image's entrypoint with {service['entrypoint']!r}")
        args = command_args(service)
        if args[:1] == ["trafi"]:
            problems.append(f"{name}: the entrypoint is already trafi; the command must not repeat it")
            continue
        parsed, refusal = parse(args)
        if refusal:
            problems.append(f"{name}: {refusal}")
            continue
        if not callable(getattr(parsed, "func", None)):
            problems.append(f"{name}: `trafi {shlex.join(args)}` has no handler")
        if parsed.command == "projections" and parsed.action in ("run", "rebuild"):
            names = parsed.names if parsed.action == "run" else [parsed.name]
            unknown = sorted(set(names) - registered)
            if unknown:
                problems.append(f"{name}: unknown projection(s) {', '.join(unknown)}")
    return problems


def projection_runs(compose: dict) -> list[tuple[str, str, list[str], int]]:
    """(service, source, projection names, replicas) of every `projections run` service."""
    runs = []
    for name, service in trafi_services(compose).items():
        parsed, _ = parse(command_args(service))
        if parsed is not None and parsed.command == "projections" and parsed.action == "run":
            runs.append((name, parsed.source, parsed.names, service.get("deploy", {}).get("replicas", 1)))
    return runs


def depends_on(service: dict) -> dict[str, dict]:
    deps = service.get("depends_on", {})
    return {d: {} for d in deps} if isinstance(deps, list) else deps


def dockerfile_instruction(keyword: str) -> list[str]:
    """The exec-form (JSON array) value of the Dockerfile's last KEYWORD instruction."""
    found = re.findall(rf"^{keyword}\s+(.+)$", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert found, f"the Dockerfile has no {keyword}"
    value = json.loads(found[-1])  # exec form: a shell-form string would not be JSON
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), value
    return value


# -- the Compose specification --------------------------------------------------------------------


def test_compose_file_follows_the_compose_specification(compose):
    assert SCHEMA.is_file(), f"the Compose schema is missing: {SCHEMA}"
    schema = json.loads(SCHEMA.read_text())
    validator = validator_for(schema, default=jsonschema.Draft7Validator)(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors)


def test_the_schema_check_can_fail(compose):
    schema = json.loads(SCHEMA.read_text())
    validator = validator_for(schema, default=jsonschema.Draft7Validator)(schema)
    broken = copy.deepcopy(compose)
    broken["services"]["api"]["depends_on"]["postgres"]["condition"] = "service_healty"
    broken["services"]["relay"]["restrat"] = "always"
    messages = [e.message for e in validator.iter_errors(broken)]
    assert any("service_healty" in m for m in messages) and any("restrat" in m for m in messages), messages


# -- the commands -----------------------------------------------------------------------------------


def test_every_trafi_service_runs_a_command_the_cli_accepts(compose):
    assert len(trafi_services(compose)) >= 7
    problems = command_problems(compose)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("command, reason", [
    (["nope"], "refused by the CLI"),
    (["trafi", "serve"], "must not repeat it"),
    (["projections", "run", "order_lists", "--source", "kafka"], "unknown projection(s) order_lists"),
    (["projections", "run", "--source", "redis"], "refused by the CLI"),
    ("relay", "refused by the CLI"),  # `relay` needs its action
])
def test_a_broken_command_fails_the_check(compose, command, reason):
    broken = copy.deepcopy(compose)
    broken["services"]["broken"] = {"image": IMAGE, "command": command}
    problems = command_problems(broken)
    assert len(problems) == 1 and problems[0].startswith("broken: ") and reason in problems[0], problems


def test_the_distributed_shape_is_complete(compose):
    services = compose["services"]
    for required in ("api", "relay", "postgres", "kafka", "redis", "analytics"):
        assert required in services, f"compose.yaml has no {required} service"
    assert command_args(services["api"])[0] == "serve"
    assert services["api"]["deploy"]["replicas"] >= 2
    assert command_args(services["relay"])[:2] == ["relay", "run"]
    assert services["relay"].get("deploy", {}).get("replicas", 1) == 1
    runs = projection_runs(compose)
    assert any(source == "kafka" for _, source, _, _ in runs), "no projection worker runs from Kafka"
    assert any(source == "kafka" and replicas > 1 for _, source, _, replicas in runs), "no Kafka-fed worker is scaled out"
    analytics = parse(command_args(services["analytics"]))[0]
    assert (analytics.command, analytics.action) == ("analytics", "run")
    assert any(command_args(s)[:2] == ["webhooks", "deliver"] for s in trafi_services(compose).values())
    assert any(command_args(s)[:2] == ["payments", "reconcile"] for s in trafi_services(compose).values())


def test_each_projection_runs_in_exactly_one_place_from_the_right_source(compose):
    where: dict[str, list[str]] = {}
    for service, source, names, replicas in projection_runs(compose):
        assert names, f"{service}: runs every projection; name them (each source runs its own)"
        for projection in names:
            where.setdefault(projection, []).append(service)
        if source == "log":
            assert set(names) <= LOG_ONLY and replicas == 1, f"{service}: log-fed, one replica, {LOG_ONLY} only"
        else:
            assert not set(names) & LOG_ONLY, f"{service}: {set(names) & LOG_ONLY} must run from the database log"
    built_in = {cls.name for cls in registry.BUILT_IN}
    assert set(where) == built_in, f"not run: {built_in - set(where)}; unknown: {set(where) - built_in}"
    assert all(len(services) == 1 for services in where.values()), where


def test_the_api_leaves_projections_and_webhooks_to_the_workers(compose):
    env = compose["services"]["api"]["environment"]
    assert env["TRAFI_EMBEDDED_PROJECTIONS"] == "0"  # the log runner refuses the Kafka-fed ones anyway
    assert env["TRAFI_REDIS_URL"].startswith("redis://redis:")
    for name, service in trafi_services(compose).items():
        env = service["environment"]
        assert env["TRAFI_EVENT_STORE"] == "postgres", name
        assert env["TRAFI_POSTGRES_DSN"].startswith("postgresql://trafi:") and "@postgres:5432/trafi" in env["TRAFI_POSTGRES_DSN"], name
        assert "TRAFI_SECRET_KEY" in env and env["TRAFI_KAFKA_BOOTSTRAP"] == "kafka:9092", name


def test_one_analytics_worker_owns_the_warehouse_and_the_api_forwards_to_it(compose):
    services = compose["services"]
    analytics = services["analytics"]
    assert analytics.get("deploy", {}).get("replicas", 1) == 1  # DuckDB: one process opens the file
    path = analytics["environment"]["TRAFI_WAREHOUSE_PATH"]
    mounts = [str(v).split(":") for v in analytics.get("volumes", [])]
    assert any(m[0] in compose.get("volumes", {}) and path.startswith(m[-1].rstrip("/") + "/") for m in mounts), mounts
    port = parse(command_args(analytics))[0].port
    assert services["api"]["environment"]["TRAFI_ANALYTICS_URL"] == f"http://analytics:{port}"


# -- start order and health -----------------------------------------------------------------------


def test_dependencies_exist_and_wait_for_health(compose):
    services = compose["services"]
    for name, service in services.items():
        for target, spec in depends_on(service).items():
            assert target in services, f"{name} depends on {target}, which is not a service"
            condition = (spec or {}).get("condition", "service_started")
            if target in ("postgres", "kafka", "redis"):
                assert condition == "service_healthy", f"{name} must wait until {target} is healthy"
            if condition == "service_healthy":
                assert "test" in services[target].get("healthcheck", {}), f"{target} has no healthcheck"
    for name, service in trafi_services(compose).items():
        assert "postgres" in depends_on(service), f"{name} does not wait for PostgreSQL"
        parsed = parse(command_args(service))[0]
        if parsed.command == "relay" or getattr(parsed, "source", None) == "kafka":
            assert "kafka" in depends_on(service), f"{name} uses Kafka without waiting for it"


def test_stateful_services_keep_their_data_in_named_volumes(compose):
    for name, target in (("postgres", "/var/lib/postgresql/data"), ("kafka", "/var/lib/kafka/data")):
        mounts = [str(v).split(":") for v in compose["services"][name].get("volumes", [])]
        assert any(m[-1] == target and m[0] in compose.get("volumes", {}) for m in mounts), name
    assert compose["services"]["kafka"]["environment"]["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"


def test_the_api_healthcheck_asks_readyz(compose):
    test = compose["services"]["api"]["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "python" and "/readyz" in test[-1]
    port = parse(command_args(compose["services"]["api"]))[0].port
    assert f"127.0.0.1:{port}/readyz" in test[-1]


# -- the image ---------------------------------------------------------------------------------------


def test_the_image_entrypoint_is_trafi_and_its_default_command_is_accepted():
    assert dockerfile_instruction("ENTRYPOINT") == ENTRYPOINT
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["trafi"] == "api.cli:main"  # what `pip install .` puts on the image's PATH
    default = dockerfile_instruction("CMD")
    parsed, refusal = parse(default)
    assert refusal is None and callable(parsed.func) and parsed.command == "serve", refusal
    assert re.search(r"^FROM python:3\.11", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert re.search(r"^RUN pip install \.", DOCKERFILE.read_text(), flags=re.MULTILINE)


def test_the_image_copies_every_package_it_installs():
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = set(re.findall(r"^COPY\s+(\S+)\s+\./\S+$", DOCKERFILE.read_text(), flags=re.MULTILINE))
    missing = {p.rstrip("*") for p in packages} - copied
    assert not missing, f"the Dockerfile does not copy {missing}"
