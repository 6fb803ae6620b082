"""Pure pricing policies: VAT rates and per-line tax, shipping, order totals."""

from domain.pricing.shipping import (
    FLAT,
    FREE_OVER,
    RATE_KINDS,
    WEIGHT,
    ShippingRate,
    ShippingZone,
    WeightBracket,
    available_rates,
    quote,
    validate_zones,
    zone_for,
)
from domain.pricing.tax import EU_COUNTRIES, VAT_SOURCE, LineTax, TaxClass, tax_line, vat_rate_bp
from domain.pricing.totals import LineTotal, PricedLine, Totals, compute_totals

__all__ = [
    "EU_COUNTRIES",
    "FLAT",
    "FREE_OVER",
    "RATE_KINDS",
    "VAT_SOURCE",
    "WEIGHT",
    "LineTax",
    "LineTotal",
    "PricedLine",
    "ShippingRate",
    "ShippingZone",
    "TaxClass",
    "Totals",
    "WeightBracket",
    "available_rates",
    "compute_totals",
    "quote",
    "tax_line",
    "validate_zones",
    "vat_rate_bp",
    "zone_for",
]
