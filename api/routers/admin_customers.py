"""Admin customers: the customer list and detail (read model `customer_list`), and removing a saved address."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict

from api.auth import Principal, admin_route, require
from api.commanding import CommandGateway, MinPosition, command_gateway
from api.examples import CUSTOMER_ID, example
from api.services import Services, services
from commands.customers import RemoveCustomerAddress
from queries.customers import CustomerDetail, CustomerSummary
from queries.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page

router = APIRouter(prefix="/v1/admin/customers", tags=["admin: customers"])

CustomerId = Annotated[UUID, Path(description="The customer's id")]
AddressId = Annotated[str, Path(min_length=1, max_length=40, description="The saved address's id")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")]
Cursor = Annotated[str | None, Query(max_length=500, description="`next_cursor` of the previous page")]
# Compared with a read-model text column, which cannot hold NUL (PostgreSQL).
EmailFilter = Annotated[str | None, Query(min_length=1, max_length=254, pattern=r"^[^\x00-\x1f\x7f]+$",
                                          description="Only the customer with this e-mail (any case)")]

CUSTOMER_SUMMARY_EXAMPLE = {
    "customer_id": CUSTOMER_ID, "email": "ada@example.com", "is_guest": False,
    "registered_at": "2026-11-02T09:00:00.000000Z", "orders_count": 3, "total_spent": 12825, "currency": "EUR",
    "last_order_at": "2026-11-21T10:15:00.000000Z",
}
CUSTOMER_DETAIL_EXAMPLE = {**CUSTOMER_SUMMARY_EXAMPLE, "address_count": 1, "updated_at": "2026-11-21T10:15:00.000000Z"}


class CustomerAddressRemoved(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"customer_id": CUSTOMER_ID, "address_id": "home", "removed": True}]})
    customer_id: UUID
    address_id: str
    removed: bool


@router.get("", summary="List customers (accounts and guests), newest first", response_model=Page[CustomerSummary],
            responses=example({"items": [CUSTOMER_SUMMARY_EXAMPLE], "next_cursor": None}),
            **admin_route("customers:read"))
def list_customers(principal: Principal = Depends(require("customers:read")), svc: Services = Depends(services),
                   email: EmailFilter = None, limit: Limit = DEFAULT_PAGE_SIZE, cursor: Cursor = None,
                   min_position: MinPosition = None):
    return svc.queries.customer_list.list_customers(principal.ctx, email=email, limit=limit, cursor=cursor,
                                                    min_position=min_position)


@router.get("/{customer_id}", summary="One customer: orders, spend and saved addresses counted",
            response_model=CustomerDetail, responses=example(CUSTOMER_DETAIL_EXAMPLE), **admin_route("customers:read"))
def get_customer(customer_id: CustomerId, principal: Principal = Depends(require("customers:read")),
                 svc: Services = Depends(services), min_position: MinPosition = None):
    return svc.queries.customer_list.get_customer(principal.ctx, customer_id, min_position=min_position)


@router.delete("/{customer_id}/addresses/{address_id}", response_model=CustomerAddressRemoved,
               summary="Remove a customer's saved address", **admin_route("customers:write"))
def remove_customer_address(customer_id: CustomerId, address_id: AddressId,
                            principal: Principal = Depends(require("customers:write")),
                            gateway: CommandGateway = Depends(command_gateway)):
    command = RemoveCustomerAddress(customer_id=customer_id, address_id=address_id)
    gateway.run(command, principal.ctx)
    # The command answers nothing; the path (part of what an idempotent replay must match) names the address.
    return {"customer_id": command.customer_id, "address_id": command.address_id, "removed": True}
