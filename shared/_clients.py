"""One way to own a client: made on first use, made again after a fork, closed once."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from shared import config

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import SubscriberClient

T = TypeVar("T")


class Lazy(Generic[T]):
    """A client (or connection) created by ``make`` on first :meth:`get`.

    gunicorn forks workers after importing the function module, and a gRPC channel does not
    survive a fork: a child process gets a client of its own on first use. Creation happens
    under a lock because the first requests arrive together on several threads.
    """

    def __init__(self, make: Callable[[], T], close: Callable[[T], object] | None = None) -> None:
        self._make = make
        self._close = close
        self._value: T | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        """The client of this process, created now if needed."""
        value = self._value
        if value is not None and self._pid == os.getpid():
            return value  # the common case takes no lock: it is on every publish
        with self._lock:
            if self._value is None or self._pid != os.getpid():
                self._value = self._make()
                self._pid = os.getpid()
            return self._value

    def peek(self) -> T | None:
        """The client if this process created one, without creating it."""
        return self._value if self._pid == os.getpid() else None

    def close(self) -> None:
        """Close this process's client, if any; the next :meth:`get` makes a new one."""
        with self._lock:
            value, self._value = self._value, None
            ours, self._pid = self._pid == os.getpid(), None
        if value is not None and ours and self._close is not None:
            self._close(value)


# Pub/Sub takes messages up to 10 MB. On GCP the library's channel has no size limit; against
# the emulator it opens a plain insecure channel, whose gRPC default refuses anything over
# 4 MiB: one large message would stall a whole subscription locally. Same limits here as there.
_UNLIMITED = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


def subscriber_client() -> SubscriberClient:
    """A ``SubscriberClient`` that receives messages of any size Pub/Sub allows, emulator too."""
    from google.cloud import pubsub_v1

    host = config.emulator_host()
    if host is None:
        return pubsub_v1.SubscriberClient()
    import grpc
    from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

    channel = grpc.insecure_channel(host, options=_UNLIMITED)
    return pubsub_v1.SubscriberClient(transport=SubscriberGrpcTransport(channel=channel))
