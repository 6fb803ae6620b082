"""Which handler runs which command: one explicit table, no registration magic."""

from __future__ import annotations

from commands import cart, catalog, checkout, customers, orders, stock, store
from commands import admin_users, api_keys, sessions
from commands import password_reset, wishlist

HANDLERS = {
    store.OpenStore: store.open_store,
    store.ChangeTaxSettings: store.change_tax_settings,
    store.SetShippingZones: store.set_shipping_zones,
    catalog.CreateProduct: catalog.create_product,
    catalog.ChangeProductDetails: catalog.change_product_details,
    catalog.ChangeProductStatus: catalog.change_product_status,
    catalog.AddVariant: catalog.add_variant,
    catalog.ChangeVariantPrice: catalog.change_variant_price,
    catalog.ChangeVariantCost: catalog.change_variant_cost,
    stock.ReceiveStock: stock.receive_stock,
    stock.AdjustStock: stock.adjust_stock,
    customers.RegisterCustomer: customers.register_customer,
    customers.AddCustomerAddress: customers.add_customer_address,
    customers.RemoveCustomerAddress: customers.remove_customer_address,
    cart.CreateCart: cart.create_cart,
    cart.AddToCart: cart.add_to_cart,
    cart.ChangeCartLineQuantity: cart.change_cart_line_quantity,
    cart.RemoveCartLine: cart.remove_cart_line,
    cart.IdentifyBuyer: cart.identify_buyer,
    cart.SetShippingAddress: cart.set_shipping_address,
    cart.ChooseShippingMethod: cart.choose_shipping_method,
    cart.RefreshCartPrices: cart.refresh_cart_prices,
    checkout.Checkout: checkout.checkout,
    orders.MarkOrderPaid: orders.mark_order_paid,
    orders.FulfilOrder: orders.fulfil_order,
    orders.MarkOrderDelivered: orders.mark_order_delivered,
    orders.CancelOrder: orders.cancel_order,
    orders.RefundOrder: orders.refund_order,
    api_keys.CreateApiKey: api_keys.create_api_key,
    api_keys.RotateApiKey: api_keys.rotate_api_key,
    api_keys.RevokeApiKey: api_keys.revoke_api_key,
    admin_users.CreateAdminUser: admin_users.create_admin_user,
    admin_users.ChangeAdminRole: admin_users.change_admin_role,
    admin_users.DeactivateAdminUser: admin_users.deactivate_admin_user,
    sessions.SignInCustomer: sessions.sign_in_customer,
    sessions.SignInAdmin: sessions.sign_in_admin,
    sessions.SignOut: sessions.sign_out,
    password_reset.RequestPasswordReset: password_reset.request_password_reset,
    password_reset.ResetPassword: password_reset.reset_password,
    wishlist.AddToWishlist: wishlist.add_to_wishlist,
    wishlist.RemoveFromWishlist: wishlist.remove_from_wishlist,
    wishlist.MoveWishlistItemToCart: wishlist.move_wishlist_item_to_cart,
    store.ChangeStoreCurrency: store.change_store_currency,
}
