"""Admin store settings: currency, tax mode, rounding and shipping zones.

Read from the write side (queries/store_settings.py): the settings are one small
aggregate, and the next read after a change must show it. Shipping zones are
described here field by field (domain/pricing/shipping.py), so that a malformed
zone is a 422 naming the field at fault; the rules across fields (countries in two
zones, brackets out of order, non-EU countries) are the domain's, also 422.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, admin_route, require
from api.commanding import CommandGateway, MinPosition, command_gateway
from api.examples import SHIPPING_ZONE_EXAMPLE, STORE_ID, STORE_SETTINGS_EXAMPLE, example, with_examples
from api.services import Services, services
from commands import store as store_commands
from domain.money import Rounding
from queries.store_settings import StoreSettings

router = APIRouter(prefix="/v1/admin/store", tags=["admin: store settings"])

MAX_MONEY = 10**12
NAME = r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$"  # one line, not blank
RoundingMode = Literal[tuple(r.value for r in Rounding)]
Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2, an EU country")]
Money = Annotated[int, Field(ge=0, le=MAX_MONEY, description="Minor units of the store currency")]
RateId = Annotated[str, Field(min_length=1, max_length=64, pattern=NAME)]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=NAME)]



class TaxSettings(BaseModel):
    model_config = with_examples({"prices_include_tax": True, "origin_country": "DE", "rounding": "half_up"})
    prices_include_tax: bool = Field(description="Prices are gross (tax included) or net")
    origin_country: Country
    rounding: RoundingMode = "half_up"


class WeightBracket(BaseModel):
    model_config = ConfigDict(extra="forbid")
    up_to_grams: int = Field(ge=0, le=10_000_000, description="Parcels up to and including this weight")
    amount: Money


class FlatRate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["flat"]
    id: RateId
    name: Name
    amount: Money


class FreeOverRate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["free_over"]
    id: RateId
    name: Name
    amount: Money = Field(description="The price below the threshold")
    free_over: Money = Field(description="Free from this subtotal on")


class WeightRate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["weight"]
    id: RateId
    name: Name
    brackets: list[WeightBracket] = Field(min_length=1, max_length=50,
                                          description="By increasing `up_to_grams`; the first that holds the parcel applies")


Rate = Annotated[Union[FlatRate, FreeOverRate, WeightRate], Field(discriminator="kind")]


class Zone(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: RateId
    name: Name
    countries: list[Country] = Field(min_length=1, max_length=50)
    rates: list[Rate] = Field(min_length=1, max_length=20, description="Rate ids are unique within a zone")


class ShippingZones(BaseModel):
    model_config = with_examples({"zones": [SHIPPING_ZONE_EXAMPLE]})
    zones: list[Zone] = Field(max_length=100, description="Replaces every zone; a country may be in one zone only")


class Currency(BaseModel):
    model_config = with_examples({"currency": "EUR"})
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217; only until the store has its first product")


class SettingsChanged(BaseModel):
    model_config = with_examples({"store_id": STORE_ID})
    store_id: UUID


class CurrencyChanged(BaseModel):
    model_config = with_examples({"currency": "EUR"})
    currency: str


@router.get("", summary="The store's settings (always current)", response_model=StoreSettings,
            responses=example(STORE_SETTINGS_EXAMPLE), **admin_route("settings:read"))
def get_settings(principal: Principal = Depends(require("settings:read")), svc: Services = Depends(services),
                 min_position: MinPosition = None):
    return svc.queries.store_settings.settings(principal.ctx, min_position=min_position)


@router.put("/tax", summary="Change the tax mode, origin country and rounding", response_model=SettingsChanged,
            **admin_route("settings:write"))
def change_tax(body: TaxSettings, principal: Principal = Depends(require("settings:write")),
               gateway: CommandGateway = Depends(command_gateway)):
    command = store_commands.ChangeTaxSettings(
        prices_include_tax=body.prices_include_tax, origin_country=body.origin_country, rounding=body.rounding,
    )
    return {"store_id": principal.store_id, **gateway.run(command, principal.ctx, payload=body).data}


@router.put("/shipping-zones", summary="Replace the shipping zones and their rates", response_model=SettingsChanged,
            **admin_route("settings:write"))
def set_shipping_zones(body: ShippingZones, principal: Principal = Depends(require("settings:write")),
                       gateway: CommandGateway = Depends(command_gateway)):
    command = store_commands.SetShippingZones(zones=[zone.model_dump() for zone in body.zones])
    return {"store_id": principal.store_id, **gateway.run(command, principal.ctx, payload=body).data}


@router.put("/currency", summary="Change the store currency (only before the first product)",
            response_model=CurrencyChanged, **admin_route("settings:write"))
def change_currency(body: Currency, principal: Principal = Depends(require("settings:write")),
                    gateway: CommandGateway = Depends(command_gateway)):
    command = store_commands.ChangeStoreCurrency(currency=body.currency)
    return gateway.run(command, principal.ctx, payload=body).data
