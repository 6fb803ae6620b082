"""Which payment providers a deployment has: the sandbox always, Stripe when configured, plugins.

A plugin is a factory registered under the `trafi.payment_providers` entry-point group:
`mollie = "my_pkg.mollie:from_settings"`, called with the deployment's settings and
returning a PaymentProvider (or None when it is not configured).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Protocol

from commands.payments.provider import PaymentProvider
from commands.payments.sandbox import SandboxProvider
from commands.payments.stripe_provider import StripeProvider


class PaymentSettings(Protocol):
    payment_provider: str
    stripe_secret_key: str | None
    stripe_webhook_secret: str | None
    stripe_api_base: str | None


def configured_providers(settings: PaymentSettings) -> dict[str, PaymentProvider]:
    providers: dict[str, PaymentProvider] = {"sandbox": SandboxProvider()}
    if settings.stripe_secret_key:
        providers["stripe"] = StripeProvider(settings.stripe_secret_key, webhook_secret=settings.stripe_webhook_secret,
                                             api_base=settings.stripe_api_base)
    for plugin in entry_points(group="trafi.payment_providers"):
        provider = plugin.load()(settings)
        if provider is not None:
            providers[provider.name] = provider
    if settings.payment_provider not in providers:
        raise ValueError(f"TRAFI_PAYMENT_PROVIDER={settings.payment_provider!r} is not configured; "
                         f"available: {', '.join(sorted(providers))}")
    return providers
