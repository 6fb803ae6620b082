"""Storefront customer accounts: register, sign in and out, reset a password, saved addresses, order history.

Every route takes the storefront key; those about "my account" also take the
`X-Customer-Session` of a signed-in customer, and act for that customer only — the
customer comes from the session, never from the path or body.

Session and reset tokens are derived, never stored (domain/tokens.py): the route
picks the id, sends only the token's hash, and derives the token again from the
command's result — so an idempotent replay answers with the same token.

Nothing here tells whether an e-mail has an account beyond what registering must:
a failed sign-in is one 401 whatever the cause, and a reset request is always 202
(its mail goes out after the response, so the answer's timing does not tell either).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID, uuid4

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Query, Request, status
from pydantic import BaseModel, Field

from api.auth import CustomerSession, Principal, client_address, signed_in_customer, storefront
from api.commanding import CommandGateway, MinPosition, command_gateway
from api.examples import CUSTOMER_ID, ORDER_SUMMARY_EXAMPLE, example, with_examples
from api.mailer import send_safely
from api.problems import ApiProblem
from api.routers.carts import Address
from api.services import Services, services
from commands.customers import AddCustomerAddress, RegisterCustomer, RemoveCustomerAddress
from commands.password_reset import RequestPasswordReset, ResetPassword
from commands.sessions import SignInCustomer, SignOut
from domain import tokens
from domain.customer import normalise_email
from domain.errors import InvalidCredentials
from domain.password_reset import invalid_reset_token
from queries.accounts import Account
from queries.orders import OrderSummary
from queries.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page

router = APIRouter(prefix="/v1/account", tags=["storefront: customer accounts"])

# E-mails end up in events and read-model text columns, which cannot hold NUL (PostgreSQL).
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
ADDRESS_ID_PATTERN = r"^[A-Za-z0-9_-]{1,40}$"
SESSION_ID = "4d3c2b1a-0f9e-4d8c-9b7a-6f5e4d3c2b1a"
SESSION_TOKEN_EXAMPLE = "trafi_cs_" + SESSION_ID.replace("-", "") + "5e" * 20
RESET_TOKEN_EXAMPLE = "trafi_rt_8a7b6c5d4e3f4a2b9c1d0e8f7a6b5c4d" + "3a" * 20

AddressId = Annotated[str, Path(min_length=1, max_length=40, description="The saved address's id")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")]
Cursor = Annotated[str | None, Query(max_length=500, description="`next_cursor` of the previous page")]



# --- registration and sessions -----------------------------------------------------------------


class Credentials(BaseModel):
    model_config = with_examples({"email": "ada@example.com", "password": "a long passphrase"})
    email: str = Field(min_length=3, max_length=254, pattern=PRINTABLE)
    password: str = Field(min_length=1, max_length=1024, description="At least 10 characters to register")


class Registered(BaseModel):
    model_config = with_examples({"customer_id": CUSTOMER_ID})
    customer_id: UUID


class SessionStarted(BaseModel):
    model_config = with_examples({"session_token": SESSION_TOKEN_EXAMPLE, "session_id": SESSION_ID,
                              "customer_id": CUSTOMER_ID, "expires_at": "2026-12-21T10:15:00Z"})
    session_token: str = Field(description="Send as `X-Customer-Session` (with the storefront key). Shown once")
    session_id: UUID
    customer_id: UUID
    expires_at: datetime


class CustomerSessionEnded(BaseModel):
    model_config = with_examples({"session_id": SESSION_ID, "ended": True})
    session_id: UUID
    ended: bool


def _too_many(seconds: int) -> ApiProblem:
    return ApiProblem(429, "rate_limited", f"too many failed sign-ins; retry in {seconds} s",
                      headers={"Retry-After": str(seconds)})


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=Registered,
             summary="Create a customer account (a returning guest's e-mail becomes an account, history kept)")
def register(body: Credentials, principal: Principal = Depends(storefront),
             gateway: CommandGateway = Depends(command_gateway)):
    command = RegisterCustomer(email=body.email, password=body.password)
    return gateway.run(command, principal.ctx, payload=body).data


@router.post(
    "/sessions", status_code=status.HTTP_201_CREATED, response_model=SessionStarted,
    summary="Sign in as a customer: the response holds the session token",
    description="An unknown e-mail, a guest and a wrong password all answer 401 `auth.invalid_credentials`. "
                "Failed attempts count against the client address's anonymous rate limit; past it, every attempt "
                "is refused with 429 before the password is checked.",
)
def sign_in(body: Credentials, request: Request, principal: Principal = Depends(storefront),
            svc: Services = Depends(services), gateway: CommandGateway = Depends(command_gateway)):
    address = client_address(request)
    locked_for = svc.lockouts.locked_for(address)
    if locked_for:
        raise _too_many(locked_for)
    session_id = uuid4()
    command = SignInCustomer(email=body.email, password=body.password, session_id=session_id,
                             token_hash=tokens.token_hash(svc.token("cs", session_id)))
    try:
        data = gateway.run(command, principal.ctx, payload=body).data
    except InvalidCredentials:
        locked_for = svc.lockouts.failed(svc.limiter, address, svc.settings.anonymous_rate)
        if locked_for:
            raise _too_many(locked_for) from None
        raise
    return {"session_token": svc.token("cs", UUID(data["session_id"])), "session_id": data["session_id"],
            "customer_id": data["subject_id"], "expires_at": data["expires_at"]}


@router.delete("/sessions/current", response_model=CustomerSessionEnded,
               summary="Sign out: the session sent is refused from the next request on")
def sign_out(customer: CustomerSession = Depends(signed_in_customer), svc: Services = Depends(services),
             gateway: CommandGateway = Depends(command_gateway)):
    data = gateway.run(SignOut(session_id=customer.session_id), customer.ctx).data
    svc.auth.forget()
    return data


# --- password reset ----------------------------------------------------------------------------


class ResetRequest(BaseModel):
    model_config = with_examples({"email": "ada@example.com"})
    email: str = Field(min_length=3, max_length=254, pattern=PRINTABLE)


class Accepted(BaseModel):
    model_config = with_examples({"status": "accepted"})
    status: str = Field(description="Always `accepted`: whether the e-mail has an account is not revealed")


class ResetConfirmation(BaseModel):
    model_config = with_examples({"token": RESET_TOKEN_EXAMPLE, "new_password": "another long passphrase"})
    token: str = Field(min_length=1, max_length=200, description="The `token` of the e-mailed link")
    new_password: str = Field(min_length=1, max_length=1024, description="At least 10 characters")


class PasswordChanged(BaseModel):
    model_config = with_examples({"customer_id": CUSTOMER_ID})
    customer_id: UUID


def _reset_mail(link: str, expires_at: str) -> str:
    return (
        "Someone asked to reset the password of your account.\n\n"
        f"To choose a new password, open this link (it works once, until {expires_at}):\n\n{link}\n\n"
        "If it was not you, ignore this e-mail: your password stays as it is.\n"
    )


@router.post(
    "/password-reset", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted,
    summary="Ask for a password reset link by e-mail (always 202, account or not)",
)
def request_password_reset(body: ResetRequest, background: BackgroundTasks, principal: Principal = Depends(storefront),
                           svc: Services = Depends(services), gateway: CommandGateway = Depends(command_gateway)):
    email = normalise_email(body.email)
    reset_id = uuid4()
    command = RequestPasswordReset(email=email, reset_id=reset_id,
                                   token_hash=tokens.token_hash(svc.token("rt", reset_id)))
    result = gateway.run(command, principal.ctx, payload=body)
    # Not again on a replay: the first request's mail went out (or can be asked for anew).
    if result.data.get("recorded") and not result.replayed:
        token = svc.token("rt", UUID(result.data["reset_id"]))
        link = f"{svc.settings.storefront_url}/reset-password?token={token}"
        background.add_task(send_safely, svc.mailer, email, "Reset your password",
                            _reset_mail(link, result.data["expires_at"]))
    return {"status": "accepted"}


@router.post("/password-reset/confirm", response_model=PasswordChanged,
             summary="Set a new password with the token of a reset link (each link works once)")
def confirm_password_reset(body: ResetConfirmation, principal: Principal = Depends(storefront),
                           gateway: CommandGateway = Depends(command_gateway)):
    parsed = tokens.parse(body.token)
    if parsed is None or parsed[0] != "rt":
        raise invalid_reset_token()
    command = ResetPassword(reset_id=parsed[1], token_hash=tokens.token_hash(body.token),
                            new_password=body.new_password)
    return gateway.run(command, principal.ctx, payload=body).data


# --- the signed-in customer's account ----------------------------------------------------------

ACCOUNT_EXAMPLE = {
    "customer_id": CUSTOMER_ID, "email": "ada@example.com", "is_guest": False,
    "addresses": [{"address_id": "home", "country": "DE", "name": "Ada Lovelace", "line1": "Invalidenstraße 1",
                   "line2": "", "city": "Berlin", "postal_code": "10115", "phone": "+49 30 1234567"}],
}


ADDRESS_EXAMPLE = Address.model_config["json_schema_extra"]["examples"][0]


class NewAddress(BaseModel):
    model_config = with_examples({"address_id": "home", "address": ADDRESS_EXAMPLE}, {"address": ADDRESS_EXAMPLE})
    address_id: str | None = Field(default=None, pattern=ADDRESS_ID_PATTERN,
                                   description="Your own id for it (saving under an id again replaces that address); "
                                               "default: a fresh one")
    address: Address


class AddressSaved(BaseModel):
    model_config = with_examples({"address_id": "home"})
    address_id: str


class SavedAddressRemoved(BaseModel):
    model_config = with_examples({"address_id": "home", "removed": True})
    address_id: str
    removed: bool


@router.get("", summary="My account: e-mail and saved addresses", response_model=Account,
            responses=example(ACCOUNT_EXAMPLE))
def get_account(customer: CustomerSession = Depends(signed_in_customer), svc: Services = Depends(services),
                min_position: MinPosition = None):
    # Read from the write side (queries/accounts.py): always current, so min_position never needs a wait.
    return svc.queries.accounts.get_account(customer.ctx, customer.customer_id)


@router.post("/addresses", status_code=status.HTTP_201_CREATED, response_model=AddressSaved,
             summary="Save an address to my account (at most 20)")
def add_address(body: NewAddress, customer: CustomerSession = Depends(signed_in_customer),
                gateway: CommandGateway = Depends(command_gateway)):
    command = AddCustomerAddress(customer_id=customer.customer_id, address_id=body.address_id or uuid4().hex[:12],
                                 address=body.address.model_dump())
    return gateway.run(command, customer.ctx, payload=body).data


@router.delete("/addresses/{address_id}", response_model=SavedAddressRemoved, summary="Remove a saved address")
def remove_address(address_id: AddressId, customer: CustomerSession = Depends(signed_in_customer),
                   gateway: CommandGateway = Depends(command_gateway)):
    command = RemoveCustomerAddress(customer_id=customer.customer_id, address_id=address_id)
    gateway.run(command, customer.ctx)
    # The command answers nothing; the path (part of what an idempotent replay must match) names the address.
    return {"address_id": command.address_id, "removed": True}


@router.get("/orders", summary="My orders, newest first (guest orders under my e-mail included)",
            response_model=Page[OrderSummary],
            responses=example({"items": [ORDER_SUMMARY_EXAMPLE], "next_cursor": None}))
def order_history(customer: CustomerSession = Depends(signed_in_customer), svc: Services = Depends(services),
                  limit: Limit = DEFAULT_PAGE_SIZE, cursor: Cursor = None, min_position: MinPosition = None):
    return svc.queries.customers.order_history(customer.ctx, customer_id=customer.customer_id, limit=limit,
                                               cursor=cursor, min_position=min_position)
