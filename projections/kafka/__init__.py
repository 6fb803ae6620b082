"""Distribution over Kafka: the relay that publishes the log, and projections that consume it.

    relay.py        the log → the events topic (a projection whose "read model" is the topic)
    messages.py     one event as a Kafka message, and back
    bookkeeping.py  what a consumer keeps in the view database: offsets, versions, dead letters
    consumer.py     any projection, fed from a consumer group instead of the log
    topics.py       the topic names of a deployment, and creating them
    config.py       TRAFI_KAFKA_* settings
"""
