"""Which handler runs which command: one explicit table, no registration magic."""

from __future__ import annotations

from commands import cart, catalog, checkout, customers, orders, stock, store

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
}
