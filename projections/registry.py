"""Which projections exist: the built-in ones, plus any a developer registers.

Custom projections are registered without touching Trafi's code, in either way:
* an entry point in the `trafi.projections` group of an installed package
  (`[project.entry-points."trafi.projections"] sales_by_hour = "my_pkg.sales:SalesByHour"`);
* the TRAFI_PROJECTIONS environment variable: `module:Class,module:Class`.
"""

from __future__ import annotations

import os
from importlib import import_module
from importlib.metadata import entry_points

from projections.hash_chain import AuditChain
from projections.projection import Projection
from projections.read_models.carts import CartView
from projections.read_models.catalogue import StorefrontCatalogue
from projections.read_models.dashboard import DashboardMetrics
from projections.read_models.orders import OrderList
from projections.read_models.stock import StockLevels
from projections.read_models.access import AccessList
from projections.read_models.customers import CustomerList
from projections.read_models.recommendations import DiagnosisRecommendations
from projections.read_models.changesets import ChangeSetList
from projections.webhooks.projection import OutboundWebhooks

BUILT_IN: tuple[type[Projection], ...] = (
    OrderList,
    CartView,
    StockLevels,
    StorefrontCatalogue,
    DashboardMetrics,
    AuditChain,
    AccessList,
    CustomerList,
    OutboundWebhooks,
    DiagnosisRecommendations,
    ChangeSetList,
)


def _load(reference: str) -> type[Projection]:
    module, _, attr = reference.partition(":")
    if not attr:
        raise ValueError(f"projection reference {reference!r} must look like 'package.module:ClassName'")
    return getattr(import_module(module.strip()), attr.strip())


def all_projections(environ: dict | None = None) -> dict[str, Projection]:
    """Every registered projection, by its pinned name."""
    env = os.environ if environ is None else environ
    classes = list(BUILT_IN)
    classes += [ep.load() for ep in entry_points(group="trafi.projections")]
    classes += [_load(ref) for ref in env.get("TRAFI_PROJECTIONS", "").split(",") if ref.strip()]
    found: dict[str, Projection] = {}
    for cls in classes:
        if not cls.name:
            raise ValueError(f"{cls.__name__} needs a pinned name")
        if cls.name in found and type(found[cls.name]) is not cls:
            raise ValueError(f"two projections are named {cls.name!r}: {type(found[cls.name]).__name__} and {cls.__name__}")
        found[cls.name] = cls()
    return found


def select(names: list[str] | None, environ: dict | None = None) -> list[Projection]:
    """The named projections (all of them when no names are given); unknown names are an error."""
    registered = all_projections(environ)
    if not names:
        return list(registered.values())
    unknown = [n for n in names if n not in registered]
    if unknown:
        raise KeyError(f"unknown projection(s): {', '.join(unknown)}; known: {', '.join(sorted(registered))}")
    return [registered[n] for n in names]
