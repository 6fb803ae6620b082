"""Outbound webhooks: a store's events POSTed to its endpoints, signed, at least once.

    schema.py      the tables (endpoints, aggregate → store map, delivery queue, attempt log)
    projection.py  OutboundWebhooks: reads the log, keeps the endpoints, enqueues deliveries
    queue.py       the delivery queue's SQL: claim due deliveries, record attempts, replay
    schedule.py    what an answer means (delivered / retry / failed) and when to retry
    address.py     the SSRF guard: resolve the host, refuse private addresses, pin the one checked
    deliverer.py   WebhookDeliverer: claims, signs, POSTs (httpx), records — the only I/O

Enqueueing is exactly once (the projection writes a delivery in the transaction that
advances its position); sending is at least once (a deliverer that dies mid-request
leaves the delivery to be sent again when its lease runs out). See docs/webhooks.md.
"""
