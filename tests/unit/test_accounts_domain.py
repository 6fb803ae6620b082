"""Customer-account rules in the domain: reset links, wishlists, the store's currency lock.

Every aggregate is also rebuilt from its events through the real serialiser, so
what the rules decided live is what a replay decides too.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import project_aggregate
from eventsourcing.domain import Snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.application import TrafiApplication
from commands.config import EventStoreConfig
from domain import ids
from domain.customer import Customer
from domain.errors import Conflict, DomainError, InvalidValue
from domain.password_reset import PasswordResetRequest
from domain.store import Store
from domain.wishlist import MAX_ITEMS, Wishlist

STORE_ID = UUID(int=1)
NOW = datetime(2026, 11, 21, 8, 0, tzinfo=timezone.utc)
_mapper = TrafiApplication(EventStoreConfig(kind="sqlite", sqlite_path=":memory:")).mapper


def through_the_store(events: list) -> list:
    """The events as a reader gets them back: JSON, transcodings and topics included."""
    return [_mapper.to_domain_event(_mapper.to_stored_event(e)) for e in events]


def replayed(events: list):
    return project_aggregate(None, through_the_store(events))


def state(aggregate) -> dict:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def account(email: str = "ann@example.com", password_hash: str | None = "$argon2id$stub") -> Customer:
    customer_id = ids.customer_id(STORE_ID, email)
    return Customer.register(customer_id, store_id=STORE_ID, email=email, password_hash=password_hash)


def reset_link(customer: Customer, token: str = "token-1", ttl: timedelta = timedelta(hours=1)) -> PasswordResetRequest:
    return PasswordResetRequest.request(uuid4(), customer=customer, token_hash=sha(token), expires_at=NOW + ttl)


def code_of(call) -> str:
    with pytest.raises(DomainError) as error:
        call()
    return error.value.code


# --- customers: the password counter ---------------------------------------------------------

def test_credentials_version_counts_password_changes_and_replays_from_existing_events():
    customer = account(password_hash=None)
    assert customer.credentials_version == 0
    customer.set_password("$argon2id$one")
    customer.set_password("$argon2id$two")
    assert customer.credentials_version == 2
    events = customer.collect_events()
    # Stored events carry no counter: streams written before it existed replay to the same count.
    assert all("credentials_version" not in vars(e) for e in events)
    assert state(replayed(events)) == state(customer)


def test_a_snapshot_taken_before_the_counter_existed_still_loads():
    customer = account()
    customer.collect_events()
    snapshot = Snapshot.take(customer)
    old_state = {k: v for k, v in snapshot.state.items() if k != "credentials_version"}
    old = Snapshot(
        originator_id=snapshot.originator_id, originator_version=snapshot.originator_version,
        timestamp=snapshot.timestamp, topic=snapshot.topic, state=old_state,
    ).mutate(None)
    assert old.credentials_version == 0
    old.set_password("$argon2id$new")
    assert old.credentials_version == 1


# --- password reset links --------------------------------------------------------------------

def test_a_link_resets_the_password_once():
    customer = account()
    link = reset_link(customer)
    link.reset_password(customer, token_hash=sha("token-1"), new_password_hash="$argon2id$new", now=NOW)
    assert customer.password_hash == "$argon2id$new" and link.used
    with pytest.raises(InvalidValue) as again:
        link.reset_password(customer, token_hash=sha("token-1"), new_password_hash="$x", now=NOW)
    assert again.value.code == "customer.invalid_reset_token" and customer.password_hash == "$argon2id$new"
    assert state(replayed(link.collect_events())) == state(link)


def test_a_reset_voids_every_other_live_link_and_so_does_any_password_change():
    customer = account()
    first, second, third = (reset_link(customer, f"token-{i}") for i in (1, 2, 3))
    second.reset_password(customer, token_hash=sha("token-2"), new_password_hash="$new", now=NOW)
    with pytest.raises(InvalidValue) as error:
        first.check_token(customer, sha("token-1"), NOW)
    assert (error.value.code, error.value.field) == ("customer.invalid_reset_token", "token")
    # A link issued after the reset works; a later change of password (not by link) voids it.
    fourth = reset_link(customer, "token-4")
    fourth.check_token(customer, sha("token-4"), NOW)
    customer.set_password("$changed-in-account-settings")
    assert code_of(lambda: fourth.check_token(customer, sha("token-4"), NOW)) == "customer.invalid_reset_token"
    assert code_of(lambda: third.check_token(customer, sha("token-3"), NOW)) == "customer.invalid_reset_token"


def test_a_link_is_for_its_own_customer_only():
    ann, bob = account("ann@example.com"), account("bob@example.com")
    link = reset_link(ann)
    assert code_of(lambda: link.check_token(bob, sha("token-1"), NOW)) == "customer.invalid_reset_token"
    assert code_of(lambda: link.check_token(None, sha("token-1"), NOW)) == "customer.invalid_reset_token"


def test_guests_have_no_password_to_reset_and_hashes_must_be_sha256_hex():
    assert code_of(lambda: reset_link(account(password_hash=None))) == "customer.no_account"
    for bad in ("", "abc", sha("x").upper(), sha("x") + "0"):
        attempt = lambda: PasswordResetRequest.request(  # noqa: E731
            uuid4(), customer=account(), token_hash=bad, expires_at=NOW
        )
        assert code_of(attempt) == "customer.invalid_token_hash"


@settings(max_examples=200, deadline=None)
@given(ttl_s=st.integers(300, 86_400), elapsed_s=st.integers(-10, 90_000))
def test_a_link_works_exactly_until_it_expires(ttl_s, elapsed_s):
    customer = account()
    link = reset_link(customer, ttl=timedelta(seconds=ttl_s))
    moment = NOW + timedelta(seconds=elapsed_s)
    if elapsed_s < ttl_s:
        link.check_token(customer, sha("token-1"), moment)
    else:
        assert code_of(lambda: link.check_token(customer, sha("token-1"), moment)) == "customer.invalid_reset_token"


@settings(max_examples=200, deadline=None)
@given(guess=st.one_of(st.text(max_size=70), st.from_regex(r"\A[0-9a-f]{64}\Z")))
def test_only_the_exact_hash_opens_a_link(guess):
    customer = account()
    link = reset_link(customer)
    if guess == sha("token-1"):
        return
    assert code_of(lambda: link.check_token(customer, guess, NOW)) == "customer.invalid_reset_token"
    assert not link.used and customer.credentials_version == 0


def test_the_expiry_survives_the_round_trip_as_an_aware_moment():
    link = reset_link(account())
    back = replayed(link.collect_events())
    assert back.expires_at == NOW + timedelta(hours=1) and back.expires_at.tzinfo is not None


# --- wishlists -------------------------------------------------------------------------------

def wishlist() -> Wishlist:
    customer = uuid4()
    return Wishlist.start(ids.wishlist_id(STORE_ID, customer), store_id=STORE_ID, customer_id=customer)


def test_adding_a_present_sku_changes_nothing_and_removing_an_absent_one_is_an_error():
    wl = wishlist()
    product = uuid4()
    assert wl.add(product_id=product, sku="MUG-1") is True
    before = len(wl.pending_events)
    assert wl.add(product_id=product, sku="MUG-1") is False
    assert len(wl.pending_events) == before
    with pytest.raises(InvalidValue) as error:
        wl.remove("TEE-M")
    assert (error.value.code, error.value.field) == ("wishlist.unknown_item", "sku")


def test_a_wishlist_holds_at_most_200_items():
    wl = wishlist()
    for i in range(MAX_ITEMS):
        wl.add(product_id=uuid4(), sku=f"SKU-{i}")
    assert code_of(lambda: wl.add(product_id=uuid4(), sku="ONE-MORE")) == "wishlist.full"
    assert wl.add(product_id=uuid4(), sku="SKU-7") is False  # a present item is still fine when full
    wl.remove("SKU-0")
    wl.add(product_id=uuid4(), sku="ONE-MORE")
    assert len(wl.items) == MAX_ITEMS


SKUS = [f"SKU-{i}" for i in range(6)]
PRODUCTS = {sku: UUID(int=500 + i) for i, sku in enumerate(SKUS)}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "remove"]), st.sampled_from(SKUS)), max_size=40))
def test_a_wishlist_is_the_set_of_skus_added_and_not_removed_since(ops):
    wl, model = wishlist(), {}
    for op, sku in ops:
        try:
            if op == "add":
                wl.add(product_id=PRODUCTS[sku], sku=sku)
                model.setdefault(sku, PRODUCTS[sku])
            else:
                wl.remove(sku)
                del model[sku]
        except InvalidValue as error:
            assert error.code == "wishlist.unknown_item" and sku not in model
    assert {sku: item["product_id"] for sku, item in wl.items.items()} == model
    assert list(wl.items) == list(model)  # in the order added
    assert state(replayed(wl.collect_events())) == state(wl)


# --- the store's currency ----------------------------------------------------------------------

def store() -> Store:
    return Store.open(ids.store_id("acme"), slug="acme", name="Acme", currency="EUR", prices_include_tax=True,
                      origin_country="DE")


def test_the_currency_changes_until_the_first_product_then_is_locked():
    shop = store()
    shop.change_currency("SEK")
    assert shop.currency == "SEK"
    events_before = len(shop.pending_events)
    shop.change_currency("SEK")  # unchanged: no event
    assert len(shop.pending_events) == events_before
    assert code_of(lambda: shop.change_currency("XYZ")) == "money.unsupported_currency"

    shop.note_product_created()
    shop.note_product_created()  # only the first product is an event on the store's stream
    topics = [type(e).TOPIC for e in shop.pending_events]
    assert topics.count("trafi.store.product_catalogue_started.v1") == 1
    with pytest.raises(Conflict) as locked:
        shop.change_currency("EUR")
    assert locked.value.code == "store.currency_locked"
    back = replayed(shop.collect_events())
    assert state(back) == state(shop) and back.has_products and back.currency == "SEK"


def test_stores_written_before_the_lock_replay_as_having_no_products():
    shop = store()
    back = replayed(shop.collect_events())
    assert back.has_products is False
