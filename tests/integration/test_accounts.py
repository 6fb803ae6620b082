"""Customer accounts end to end, on SQLite and PostgreSQL: password reset links, wishlists, the store's
currency, and the customer list read model with its queries — tenancy included."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

import commands.password_reset as password_reset
from commands.cart import CreateCart, IdentifyBuyer
from commands.catalog import AddVariant, ChangeProductStatus, CreateProduct
from commands.checkout import Checkout
from commands.config import EventStoreConfig
from commands.context import StoreContext
from commands.customers import AddCustomerAddress, RegisterCustomer, RemoveCustomerAddress
from commands.password_reset import RequestPasswordReset, ResetPassword
from commands.store import ChangeStoreCurrency, OpenStore
from commands.wishlist import AddToWishlist, MoveWishlistItemToCart, RemoveFromWishlist
from domain import ids, tokens
from domain.errors import Conflict, DomainError, NotFound
from domain.passwords import verify_password
from projections.read_models.carts import CartView
from projections.read_models.catalogue import StorefrontCatalogue
from projections.read_models.customers import CustomerList
from projections.read_models.dashboard import DashboardMetrics
from projections.rebuild import rebuild
from projections.registry import BUILT_IN, all_projections
from projections.runner import ProjectionRunner
from projections.testing import clean_build, table_rows
from projections.kafka import bookkeeping as kafka_bookkeeping
from projections.views import POSITIONS_TABLE, ViewStore
from queries.accounts import AccountQueries
from queries.customers import CustomerListQueries
from queries.wishlist import WishlistQueries
from tests.factories import ADDRESS_DE, ready_cart, seed_small_store

SECRET = b"integration secret"
PASSWORD = "correct horse battery"


@contextmanager
def no_write(app):
    before = app.recorder.max_notification_id()
    yield
    assert app.recorder.max_notification_id() == before


def code_of(call) -> str:
    with pytest.raises(DomainError) as error:
        call()
    return error.value.code


def register(bus, ctx, email: str) -> UUID:
    return UUID(bus.execute(RegisterCustomer(email=email, password=PASSWORD), ctx).data["customer_id"])


def request_link(bus, ctx, email: str, **fields) -> tuple[str, dict]:
    """What the API does: pick the id, derive the token, send its hash; returns the token it would mail."""
    reset_id = uuid4()
    token = tokens.derive(SECRET, "rt", reset_id)
    result = bus.execute(RequestPasswordReset(email=email, reset_id=reset_id, token_hash=tokens.token_hash(token),
                                              **fields), ctx)
    return token, result.data


def use_link(bus, ctx, token: str, new_password: str):
    kind, reset_id = tokens.parse(token)
    assert kind == "rt"
    return bus.execute(ResetPassword(reset_id=reset_id, token_hash=tokens.token_hash(token),
                                     new_password=new_password), ctx)


# --- password reset --------------------------------------------------------------------------

def test_a_reset_link_sets_a_new_password_once_and_voids_the_others(app, bus, shop):
    ctx = shop.ctx
    customer_id = register(bus, ctx, "ann@example.com")
    older, _ = request_link(bus, ctx, "ann@example.com")
    token, recorded = request_link(bus, ctx, "Ann@Example.com ")
    assert recorded["recorded"] is True and UUID(recorded["customer_id"]) == customer_id
    assert UUID(recorded["reset_id"]) == tokens.parse(token)[1] and recorded["expires_at"]

    result = use_link(bus, ctx, token, "a brand new passphrase")
    assert result.data == {"customer_id": str(customer_id)}
    customer = app.repository.get(customer_id)
    assert verify_password(customer.password_hash, "a brand new passphrase")
    # Neither this link again nor an older one still open opens the account now.
    for link in (token, older):
        with no_write(app):
            assert code_of(lambda: use_link(bus, ctx, link, "yet another passphrase")) == "customer.invalid_reset_token"
    # The event log holds the hash of the token, never the token.
    stored = b"".join(s.state for s in app.events.recorder.select_events(tokens.parse(token)[1]))
    assert token.encode() not in stored and tokens.token_hash(token).encode() in stored


def test_unknown_emails_and_guests_get_the_same_answer_and_nothing_is_recorded(app, bus, shop):
    bus.execute(Checkout(cart_id=ready_cart(bus, shop, {"MUG-1": 1}, email="guest@example.com")), shop.ctx)
    for email in ("nobody@example.com", "guest@example.com"):
        with no_write(app):
            _, result = request_link(bus, shop.ctx, email)
        assert result == {"recorded": False}


def test_wrong_expired_and_foreign_links_are_all_invalid(app, bus, shop, monkeypatch):
    ctx = shop.ctx
    register(bus, ctx, "ann@example.com")
    token, _ = request_link(bus, ctx, "ann@example.com", ttl_seconds=300)
    _, reset_id = tokens.parse(token)
    forged = ResetPassword(reset_id=reset_id, token_hash=tokens.token_hash(token + "0"), new_password=PASSWORD + "!")
    unknown = tokens.derive(SECRET, "rt", uuid4())
    other = seed_small_store(bus, stock=0)
    with no_write(app):
        assert code_of(lambda: bus.execute(forged, ctx)) == "customer.invalid_reset_token"
        assert code_of(lambda: use_link(bus, ctx, unknown, "whatever passphrase")) == "customer.invalid_reset_token"
        # Another store's context cannot use this store's link.
        assert code_of(lambda: use_link(bus, other.ctx, token, "whatever passphrase")) == "customer.invalid_reset_token"
        # A weak password with a good link: the link stays usable.
        assert code_of(lambda: use_link(bus, ctx, token, "short")) == "customer.weak_password"
        later = password_reset.now() + timedelta(seconds=301)
        monkeypatch.setattr(password_reset, "now", lambda: later)
        assert code_of(lambda: use_link(bus, ctx, token, "a brand new passphrase")) == "customer.invalid_reset_token"
    monkeypatch.undo()
    use_link(bus, ctx, token, "a brand new passphrase")


def test_a_retried_reset_request_with_its_idempotency_key_returns_the_first_result(app, bus, shop):
    register(bus, shop.ctx, "ann@example.com")
    reset_id = uuid4()
    command = RequestPasswordReset(email="ann@example.com", reset_id=reset_id,
                                   token_hash=tokens.token_hash(tokens.derive(SECRET, "rt", reset_id)))
    first = bus.execute(command, shop.ctx, idempotency_key="reset-1")
    again = bus.execute(command, shop.ctx, idempotency_key="reset-1")
    assert again.replayed and again.data == first.data
    assert code_of(lambda: bus.execute(command, shop.ctx)) == "customer.reset_exists"


# --- wishlists -------------------------------------------------------------------------------

def test_wishlist_add_remove_and_read_back_at_once(app, bus, shop):
    ctx, wishlists = shop.ctx, WishlistQueries(app)
    customer_id = register(bus, ctx, "ann@example.com")
    assert wishlists.get_wishlist(ctx, customer_id).items == ()
    first = bus.execute(AddToWishlist(customer_id=customer_id, product_id=shop.products["MUG-1"], sku="MUG-1"), ctx)
    assert first.data == {"wishlist_id": str(ids.wishlist_id(ctx.store_id, customer_id)), "sku": "MUG-1",
                          "added": True, "item_count": 1}
    with no_write(app):
        again = bus.execute(AddToWishlist(customer_id=customer_id, product_id=shop.products["MUG-1"], sku="MUG-1"), ctx)
    assert again.data["added"] is False and again.position is None
    bus.execute(AddToWishlist(customer_id=customer_id, product_id=shop.products["TEE-M"], sku="TEE-M"), ctx)
    view = wishlists.get_wishlist(ctx, customer_id)
    assert [(i.sku, i.product_id) for i in view.items] == [("MUG-1", shop.products["MUG-1"]),
                                                           ("TEE-M", shop.products["TEE-M"])]
    bus.execute(RemoveFromWishlist(customer_id=customer_id, sku="MUG-1"), ctx)
    assert [i.sku for i in wishlists.get_wishlist(ctx, customer_id).items] == ["TEE-M"]

    with no_write(app):
        assert code_of(lambda: bus.execute(RemoveFromWishlist(customer_id=customer_id, sku="MUG-1"), ctx)) == (
            "wishlist.unknown_item")
        assert code_of(lambda: bus.execute(
            AddToWishlist(customer_id=customer_id, product_id=shop.products["MUG-1"], sku="BOOK-1"), ctx
        )) == "product.unknown_sku"
        assert code_of(lambda: bus.execute(
            AddToWishlist(customer_id=customer_id, product_id=uuid4(), sku="MUG-1"), ctx
        )) == "wishlist.unknown_product"


def test_moving_an_item_to_the_cart_is_one_save(app, bus, shop):
    ctx = shop.ctx
    customer_id = register(bus, ctx, "ann@example.com")
    for sku in ("MUG-1", "BOOK-1"):
        bus.execute(AddToWishlist(customer_id=customer_id, product_id=shop.products[sku], sku=sku), ctx)
    cart_id = UUID(bus.execute(CreateCart(currency="EUR", email="ann@example.com"), ctx).data["cart_id"])
    before = app.recorder.max_notification_id()
    result = bus.execute(MoveWishlistItemToCart(customer_id=customer_id, sku="MUG-1", cart_id=cart_id, quantity=2), ctx)
    assert result.data == {"cart_id": str(cart_id), "sku": "MUG-1", "quantity": 2, "wishlist_item_count": 1}
    notifications = app.recorder.select_notifications(start=before + 1, limit=10)
    assert sorted(n.topic for n in notifications) == ["trafi.cart.item_added.v1", "trafi.wishlist.item_removed.v1"]
    assert result.position == notifications[-1].id  # both in the command's one transaction
    assert app.repository.get(cart_id).lines["MUG-1"]["quantity"] == 2

    # A product no longer for sale stays on the wishlist, and the cart is untouched.
    bus.execute(ChangeProductStatus(product_id=shop.products["BOOK-1"], status="archived"), ctx)
    with no_write(app):
        assert code_of(lambda: bus.execute(
            MoveWishlistItemToCart(customer_id=customer_id, sku="BOOK-1", cart_id=cart_id), ctx
        )) == "cart.unavailable_product"
    # Someone else's cart is not a destination.
    bob_cart = UUID(bus.execute(CreateCart(currency="EUR"), ctx).data["cart_id"])
    bus.execute(IdentifyBuyer(cart_id=bob_cart, email="bob@example.com"), ctx)
    bus.execute(ChangeProductStatus(product_id=shop.products["BOOK-1"], status="draft"), ctx)
    bus.execute(ChangeProductStatus(product_id=shop.products["BOOK-1"], status="active"), ctx)
    with no_write(app):
        assert code_of(lambda: bus.execute(
            MoveWishlistItemToCart(customer_id=customer_id, sku="BOOK-1", cart_id=bob_cart), ctx
        )) == "wishlist.foreign_cart"
        assert code_of(lambda: bus.execute(
            MoveWishlistItemToCart(customer_id=customer_id, sku="BOOK-1", cart_id=uuid4()), ctx
        )) == "cart.not_found"


def test_another_stores_customer_and_wishlist_are_not_found(app, bus, shop):
    other = seed_small_store(bus, stock=0)
    customer_id = register(bus, shop.ctx, "ann@example.com")
    bus.execute(AddToWishlist(customer_id=customer_id, product_id=shop.products["MUG-1"], sku="MUG-1"), shop.ctx)
    bus.execute(AddCustomerAddress(customer_id=customer_id, address_id="home", address=ADDRESS_DE), shop.ctx)
    with no_write(app):
        for command in (
            AddToWishlist(customer_id=customer_id, product_id=other.products["MUG-1"], sku="MUG-1"),
            RemoveFromWishlist(customer_id=customer_id, sku="MUG-1"),
            MoveWishlistItemToCart(customer_id=customer_id, sku="MUG-1", cart_id=uuid4()),
        ):
            assert code_of(lambda: bus.execute(command, other.ctx)) == "customer.not_found"
        # Nor may a customer wish for another store's product.
        assert code_of(lambda: bus.execute(
            AddToWishlist(customer_id=customer_id, product_id=other.products["MUG-1"], sku="MUG-1"), shop.ctx
        )) == "wishlist.unknown_product"
    for query in (lambda c: WishlistQueries(app).get_wishlist(c, customer_id),
                  lambda c: AccountQueries(app).get_account(c, customer_id)):
        with pytest.raises(NotFound):
            query(other.ctx)
        with pytest.raises(NotFound):
            query(StoreContext(store_id=ids.store_id("ghost")))


# --- the account screen ----------------------------------------------------------------------

def test_the_account_shows_saved_addresses_as_soon_as_they_are_saved(app, bus, shop):
    ctx, accounts = shop.ctx, AccountQueries(app)
    customer_id = register(bus, ctx, "Ann@Example.com")
    bus.execute(AddCustomerAddress(customer_id=customer_id, address_id="home", address=ADDRESS_DE), ctx)
    bus.execute(AddCustomerAddress(customer_id=customer_id, address_id="work",
                                   address={**ADDRESS_DE, "country": "at", "line2": "3. Stock"}), ctx)
    account = accounts.get_account(ctx, customer_id)
    assert (account.email, account.is_guest) == ("ann@example.com", False)
    assert [(a.address_id, a.country, a.city, a.line2) for a in account.addresses] == [
        ("home", "DE", "Köln", ""), ("work", "AT", "Köln", "3. Stock")]
    bus.execute(RemoveCustomerAddress(customer_id=customer_id, address_id="home"), ctx)
    assert [a.address_id for a in accounts.get_account(ctx, customer_id).addresses] == ["work"]


# --- the store's currency ----------------------------------------------------------------------

def test_the_currency_changes_until_the_first_product_and_read_models_follow(app, bus, views):
    slug = f"fresh-{uuid4().hex[:8]}"
    ctx = StoreContext(store_id=ids.store_id(slug))
    bus.execute(OpenStore(slug=slug, name="Fresh", currency="EUR", origin_country="SE"), ctx)
    result = bus.execute(ChangeStoreCurrency(currency="SEK"), ctx)
    assert result.data == {"currency": "SEK"} and app.repository.get(ctx.store_id).currency == "SEK"
    with no_write(app):
        assert code_of(lambda: bus.execute(ChangeStoreCurrency(currency="XYZ"), ctx)) == "money.unsupported_currency"
        assert bus.execute(ChangeStoreCurrency(currency="SEK"), ctx).position is None

    product_id = UUID(bus.execute(CreateProduct(handle="lamp", title="Lamp"), ctx).data["product_id"])
    bus.execute(CreateProduct(handle="desk", title="Desk"), ctx)
    store_topics = [type(e).TOPIC for e in app.events.get(ctx.store_id)]
    assert store_topics.count("trafi.store.product_catalogue_started.v1") == 1  # the first product only
    with no_write(app):
        with pytest.raises(Conflict) as locked:
            bus.execute(ChangeStoreCurrency(currency="EUR"), ctx)
    assert locked.value.code == "store.currency_locked"

    bus.execute(AddVariant(product_id=product_id, sku="LAMP-1", price=49900, unit_cost=20000), ctx)
    for projection in (CartView(), StorefrontCatalogue(), DashboardMetrics()):
        ProjectionRunner(app, views, projection).catch_up()
    with views.read() as tx:
        for table in ("rm_cart_stores", "rm_catalogue_stores", "rm_dashboard_stores"):
            assert tx.execute(f"SELECT currency FROM {table} WHERE store_id = %s",
                              (str(ctx.store_id),)).fetchone() == ("SEK",), table


def test_a_product_needs_an_open_store(app, bus):
    with no_write(app):
        assert code_of(lambda: bus.execute(CreateProduct(handle="lamp", title="Lamp"),
                                           StoreContext(store_id=ids.store_id("ghost")))) == "store.not_found"


# --- the customer list -------------------------------------------------------------------------

def customer_life(bus, shop) -> dict[str, UUID]:
    """Accounts, guests, addresses and orders: every event the customer list follows."""
    ctx, who = shop.ctx, {}
    who["ann"] = register(bus, ctx, "ann@example.com")
    bus.execute(AddCustomerAddress(customer_id=who["ann"], address_id="home", address=ADDRESS_DE), ctx)
    bus.execute(AddCustomerAddress(customer_id=who["ann"], address_id="work", address=ADDRESS_DE), ctx)
    bus.execute(RemoveCustomerAddress(customer_id=who["ann"], address_id="work"), ctx)
    for lines in ({"MUG-1": 2}, {"BOOK-1": 1, "TEE-M": 1}):
        bus.execute(Checkout(cart_id=ready_cart(bus, shop, lines, email="ann@example.com")), ctx)
    # A guest who later registers: the same customer, now an account.
    bus.execute(Checkout(cart_id=ready_cart(bus, shop, {"TEE-M": 1}, email="Bob@Example.com")), ctx)
    who["bob"] = register(bus, ctx, "bob@example.com")
    bus.execute(Checkout(cart_id=ready_cart(bus, shop, {"MUG-1": 1}, email="cid@example.com")), ctx)
    who["cid"] = ids.customer_id(ctx.store_id, "cid@example.com")
    who["dee"] = register(bus, ctx, "dee@example.com")
    return who


def test_the_customer_list_equals_the_write_side_and_pages_newest_first(app, bus, shop, views):
    ctx = shop.ctx
    runner = ProjectionRunner(app, views, CustomerList(), batch_size=4)
    who = customer_life(bus, shop)
    other = seed_small_store(bus, stock=10)
    register(bus, other.ctx, "ann@example.com")  # same e-mail, another store: another customer
    runner.catch_up()
    customers = CustomerListQueries(views)

    orders = {}
    for order in (app.repository.get(n.originator_id) for n in app.recorder.select_notifications(start=1, limit=10_000)
                  if n.topic == "trafi.order.placed.v1"):
        if order.store_id == ctx.store_id:
            orders.setdefault(order.customer_id, []).append(order)
    for name, customer_id in who.items():
        customer = app.repository.get(customer_id)
        detail = customers.get_customer(ctx, customer_id)
        placed = orders.get(customer_id, [])
        assert (detail.email, detail.is_guest, detail.address_count) == (
            customer.email.value, customer.is_guest, len(customer.addresses)), name
        assert (detail.orders_count, detail.total_spent) == (len(placed), sum(o.total for o in placed)), name
        assert detail.currency == ("EUR" if placed else None) and (detail.last_order_at is None) == (not placed)
    assert customers.get_customer(ctx, who["ann"]).orders_count == 2
    assert customers.get_customer(ctx, who["bob"]).is_guest is False
    assert customers.get_customer(ctx, who["cid"]).is_guest is True

    # Newest first, in pages, each customer exactly once; only this store's.
    seen, cursor = [], None
    while True:
        page = customers.list_customers(ctx, limit=2, cursor=cursor)
        seen += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(c.customer_id for c in seen) == sorted(who.values())
    keys = [(c.registered_at, str(c.customer_id)) for c in seen]
    assert keys == sorted(keys, reverse=True)
    assert seen[-1].customer_id == who["ann"] and seen[0].customer_id == who["dee"]

    found = customers.list_customers(ctx, email=" ANN@example.com")
    assert [c.customer_id for c in found.items] == [who["ann"]]
    assert customers.list_customers(ctx, email="nobody@example.com").items == ()
    # Tenancy: another store's customer is not found, and the same e-mail there is another customer.
    with pytest.raises(NotFound):
        customers.get_customer(other.ctx, who["ann"])
    assert [c.customer_id for c in customers.list_customers(other.ctx).items] == [
        ids.customer_id(other.ctx.store_id, "ann@example.com")]
    with pytest.raises(DomainError) as bad:
        customers.list_customers(ctx, cursor="not-a-cursor")
    assert bad.value.code == "query.invalid_cursor"


def test_the_customer_list_waits_for_a_commands_position(app, bus, shop, views):
    runner = ProjectionRunner(app, views, CustomerList())
    result = bus.execute(RegisterCustomer(email="ann@example.com", password=PASSWORD), shop.ctx)
    customers = CustomerListQueries(views)
    with pytest.raises(DomainError) as behind:
        customers.get_customer(shop.ctx, UUID(result.data["customer_id"]), min_position=result.position, timeout_s=0)
    assert behind.value.code == "query.read_model_behind"
    runner.catch_up()
    detail = customers.get_customer(shop.ctx, UUID(result.data["customer_id"]), min_position=result.position)
    assert detail.email == "ann@example.com"


def test_the_customer_list_clean_build_and_rebuild_equal_live(app, bus, shop, views, tmp_path):
    live = ProjectionRunner(app, views, CustomerList(), batch_size=3)
    customer_life(bus, shop)
    live.catch_up()
    live_rows = table_rows(views, CustomerList())
    assert live_rows["rm_customers"]
    assert clean_build(app, CustomerList(), tmp_path) == live_rows
    rebuild(app, views, CustomerList())
    assert table_rows(views, CustomerList()) == live_rows


def test_the_customer_list_is_registered_and_owns_what_it_creates(tmp_path):
    assert CustomerList in BUILT_IN and type(all_projections({})["customer_list"]) is CustomerList
    path = tmp_path / "customers.sqlite"
    store = ViewStore(EventStoreConfig(kind="sqlite", sqlite_path=str(path)))
    with store.transaction() as tx:
        CustomerList().setup(tx)
        CustomerList().setup(tx)  # idempotent
    store.close()
    with sqlite3.connect(str(path).replace(".sqlite", "-views.sqlite")) as db:
        bookkeeping = (POSITIONS_TABLE, *kafka_bookkeeping.TABLES)  # the view store's own tables
        objects = db.execute(
            "SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
            f"AND tbl_name NOT IN ({', '.join('?' * len(bookkeeping))})", bookkeeping,
        ).fetchall()
    assert {name for kind, name, _ in objects if kind == "table"} == set(CustomerList.tables)
    assert all(name.startswith(f"{table}_") for kind, name, table in objects if kind == "index")
