"""Kombu's Redis transport, with a closed connection reported as a connection error Celery recovers from."""

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.Channel):
    """A channel whose connection a reconnect closed raises ConnectionError, not AttributeError.

    When the worker loses Redis it closes the broken connection (the transport's `client` becomes
    None); restoring unacknowledged messages, or a late acknowledgement from a task that finished
    meanwhile, then rebuilt a pool from it and kombu raised `'NoneType' object has no attribute
    'hostname'`, which Celery treats as fatal ("Unrecoverable error": the worker exited). As a
    connection error it is logged and the worker reconnects; the message comes back from Redis.
    """

    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection is None or self.connection.client is None:
            raise RedisConnectionError("the broker connection of this channel was closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel
