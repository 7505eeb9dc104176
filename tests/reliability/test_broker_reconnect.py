"""A worker survives a broker reconnect: a late acknowledgement on the closed channel no longer stops it.

The cause, shown with kombu itself on a Redis of the test's own: when the worker loses Redis it closes
the broken connection (its channels drop their pools, the transport loses its client) and reconnects;
a task finishing after that acknowledges on the old channel, and kombu raises an AttributeError
(`'NoneType' object has no attribute 'hostname'` or `... 'client'`), which Celery does not count as
a connection error, so the worker exited ("Unrecoverable error").
"""

import logging
import shutil

import kombu
import pytest
from kombu.utils.imports import symbol_by_name

from hub.celery import app as celery_app
from partners.tasks import process_inbound_message
from tests.conftest import RedisServer

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="starts a redis-server of its own"),
]

QUEUE = "reconnect-test"


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(str(tmp_path))
    server.start()
    yield server
    server.stop()


def consumed_then_connection_closed(url: str, count: int):
    """Publish `count` task messages, take them as the worker does, then close the consumer's connection."""
    with kombu.Connection(url) as publisher:
        for n in range(count):
            process_inbound_message.apply_async((n,), connection=publisher, queue=QUEUE)
    consumer = kombu.Connection(url)
    queue = consumer.SimpleQueue(QUEUE, no_ack=False)
    messages = [queue.get(timeout=5) for _ in range(count)]
    consumer.close()  # what Celery's consumer does with a broken connection before it reconnects
    for message in messages:
        message.channel._disconnect_pools()  # as Channel.close() leaves a channel whose Redis was gone
    return consumer, messages


def test_kombu_raises_attribute_error_for_an_ack_on_a_closed_connection(own_redis):
    consumer, [message] = consumed_then_connection_closed(own_redis.url, 1)

    with pytest.raises(AttributeError, match="NoneType"):
        message.ack_log_error(logging.getLogger(__name__), consumer.connection_errors)


def test_a_late_ack_on_a_channel_closed_by_a_reconnect_is_dropped_not_fatal(own_redis, caplog):
    consumer, messages = consumed_then_connection_closed(own_redis.url, 2)
    request_class = symbol_by_name(process_inbound_message.Request)
    requests = [
        request_class(
            message,
            on_ack=message.ack_log_error,
            on_reject=message.reject_log_error,
            app=celery_app,
            task=process_inbound_message,
            connection_errors=consumer.connection_errors,
            body=message.body,
            headers=message.headers,
            decoded=False,
            utc=True,
        )
        for message in messages
    ]

    requests[0].acknowledge()
    requests[1].reject(requeue=True)

    assert [r.acknowledged for r in requests] == [True, True]
    assert "broker channel is closed" in caplog.text
