"""WebhookEndpoint: where a store wants its events sent, and which ones.

The signing secret is never an attribute and never in an event: like an API key's
token (domain/tokens.py) it is derived from the deployment's secret key, the
endpoint's id and the secret's generation (`derive_secret`), shown once when the
endpoint is created or the secret rotated, and derived again by the deliverer at
send time. Rotating moves to the next generation; the previous secret stops
signing at once (receivers should accept both for the few seconds a redeploy takes
— the timestamp tolerance covers in-flight requests).

A deleted endpoint stays in the log (its history is audit trail) but accepts no
further change: the command layer treats it as not found.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from urllib.parse import urlsplit
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, InvalidValue
from domain.webhook_topics import check_event_types

SECRET_PREFIX = "whsec_"
MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 500
SCHEMES = ("http", "https")
STATUSES = ("active", "disabled", "deleted")

_CONTROL = re.compile(r"[\x00-\x20\x7f]")  # spaces included: a URL has none
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def derive_secret(secret_key: bytes, endpoint_id: UUID, generation: int) -> str:
    """The endpoint's signing secret for a generation: `whsec_` + 64 hex digits.

    The message names its purpose so that no other HMAC of the same secret key
    (bearer tokens hash "<kind>:<id>:<generation>") can ever produce the same value.
    """
    mac = hmac.new(secret_key, f"webhook-secret:{endpoint_id}:{generation}".encode(), hashlib.sha256).hexdigest()
    return SECRET_PREFIX + mac


class WebhookEndpointDeleted(Conflict):
    code = "webhook_endpoint.deleted"

    def __init__(self) -> None:
        super().__init__("this webhook endpoint has been deleted")


class DeliveryNotReplayable(Conflict):
    code = "webhook_delivery.not_replayable"

    def __init__(self, status: str) -> None:
        super().__init__(f"only a failed delivery can be replayed; this one is {status}")


def check_url(url: str, field: str = "url") -> str:
    """An absolute http(s) URL without credentials or fragment, ASCII, at most MAX_URL_LENGTH characters.

    Private and loopback addresses are not refused here: that depends on the deployment
    (TRAFI_WEBHOOKS_ALLOW_PRIVATE) and on what the host resolves to when a delivery is
    made, so the deliverer checks it then.
    """
    def invalid(reason: str) -> InvalidValue:
        return InvalidValue(field, reason, code="webhook_endpoint.invalid_url")

    if not isinstance(url, str) or not url:
        raise invalid("a URL is required")
    if len(url) > MAX_URL_LENGTH:
        raise invalid(f"at most {MAX_URL_LENGTH} characters")
    if not url.isascii() or _CONTROL.search(url):
        raise invalid("ASCII without spaces or control characters (IDN hosts in punycode, paths percent-encoded)")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 — raises ValueError on a port that is not a number in range
    except ValueError as error:
        raise invalid(f"not a valid URL: {error}") from None
    if parts.scheme.lower() not in SCHEMES:
        raise invalid("must start with http:// or https://")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise invalid("must not contain credentials (user:password@); authenticate with the signature instead")
    if "#" in url:
        raise invalid("must not contain a #fragment (it is never sent)")
    if not parts.hostname or not _valid_host(parts.hostname):
        raise invalid("needs a valid host name or IP address")
    return url


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    return 0 < len(name) <= 253 and all(_LABEL.match(label) for label in name.split("."))


def check_description(description: str | None, field: str = "description") -> str:
    text = (description or "").strip()
    if len(text) > MAX_DESCRIPTION_LENGTH or re.search(r"[\x00-\x1f\x7f]", text):
        raise InvalidValue(field, f"at most {MAX_DESCRIPTION_LENGTH} characters, no control characters",
                           code="webhook_endpoint.invalid_description")
    return text


class WebhookEndpoint(Aggregate):
    TOPIC = "trafi.webhook_endpoint.v1"

    @event("Created", topic="trafi.webhook_endpoint.created.v1")
    def __init__(
        self, id: UUID, store_id: UUID, url: str, event_types: tuple[str, ...], description: str, generation: int,
        created_by: str,
    ):
        self.store_id = store_id
        self.url = url
        self.event_types = tuple(event_types)  # a list after a JSON round trip
        self.description = description
        self.generation = generation
        self.created_by = created_by
        self.active = True
        self.deleted = False

    @classmethod
    def create(
        cls, id: UUID, *, store_id: UUID, url: str, event_types, description: str | None, created_by: str,
    ) -> WebhookEndpoint:
        return cls(
            id=id, store_id=store_id, url=check_url(url), event_types=check_event_types(event_types),
            description=check_description(description), generation=0, created_by=created_by,
        )

    @property
    def status(self) -> str:
        return "deleted" if self.deleted else "active" if self.active else "disabled"

    def _check_not_deleted(self) -> None:
        if self.deleted:
            raise WebhookEndpointDeleted()

    def change(self, *, url: str | None = None, event_types=None, description: str | None = None, by: str) -> bool:
        """Change what is given (None keeps the current value); False when nothing changes."""
        self._check_not_deleted()
        new_url = check_url(url) if url is not None else self.url
        new_types = check_event_types(event_types) if event_types is not None else self.event_types
        new_description = check_description(description) if description is not None else self.description
        if (new_url, new_types, new_description) == (self.url, self.event_types, self.description):
            return False
        self._updated(url=new_url, event_types=new_types, description=new_description, updated_by=by)
        return True

    @event("Updated", topic="trafi.webhook_endpoint.updated.v1")
    def _updated(self, url: str, event_types: tuple[str, ...], description: str, updated_by: str) -> None:
        self.url = url
        self.event_types = tuple(event_types)
        self.description = description

    def rotate_secret(self, by: str) -> None:
        self._check_not_deleted()
        self._secret_rotated(generation=self.generation + 1, rotated_by=by)

    @event("SecretRotated", topic="trafi.webhook_endpoint.secret_rotated.v1")
    def _secret_rotated(self, generation: int, rotated_by: str) -> None:
        self.generation = generation

    def disable(self, by: str) -> None:
        """Disabling a disabled endpoint changes nothing (a retry is safe)."""
        self._check_not_deleted()
        if self.active:
            self._disabled(disabled_by=by)

    @event("Disabled", topic="trafi.webhook_endpoint.disabled.v1")
    def _disabled(self, disabled_by: str) -> None:
        self.active = False

    def enable(self, by: str) -> None:
        self._check_not_deleted()
        if not self.active:
            self._enabled(enabled_by=by)

    @event("Enabled", topic="trafi.webhook_endpoint.enabled.v1")
    def _enabled(self, enabled_by: str) -> None:
        self.active = True

    def replay_delivery(self, delivery_id: UUID, *, status: str, by: str) -> None:
        """Send a failed delivery again (a fresh round of retries; its attempt numbers continue).

        `status`: the delivery's status as the delivery queue shows it. Deliveries are not
        part of this aggregate (they are the outbound_webhooks projection's rows), so the
        caller reads it there; the projection applies the replay only to a delivery that is
        still failed, so a stale `status` can never resend a delivered one.
        """
        self._check_not_deleted()
        if status != "failed":
            raise DeliveryNotReplayable(status)
        self._delivery_replayed(delivery_id=delivery_id, replayed_by=by)

    @event("DeliveryReplayed", topic="trafi.webhook_endpoint.delivery_replayed.v1")
    def _delivery_replayed(self, delivery_id: UUID, replayed_by: str) -> None:
        pass

    def delete(self, by: str) -> None:
        self._check_not_deleted()
        self._deleted(deleted_by=by)

    @event("Deleted", topic="trafi.webhook_endpoint.deleted.v1")
    def _deleted(self, deleted_by: str) -> None:
        self.deleted = True
        self.active = False
