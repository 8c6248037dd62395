"""pubsub-kit: typed events, one topology, and Cloud Functions consumers for Google Cloud Pub/Sub.

The public surface is re-exported here; modules named ``_like_this`` are plumbing.
Importing ``shared`` does not import the Pub/Sub or Firestore clients: they load on first use.
Nor does it import what a Cloud Function does not need to start: :class:`Publisher` and
:class:`PullWorker` (and their settings) load when first named (``shared.Publisher``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from shared.consumer import ConsumerApp, consumer
from shared.delivery import Delivery, RawMessage
from shared.errors import (
    ConfigurationError,
    EventValidationError,
    MalformedMessageError,
    PermanentError,
    PublishError,
    RetryableError,
    ToolkitError,
    TopologyError,
    UnknownEventTypeError,
)
from shared.events import REDACTED, Event, EventRegistry, Sensitive, SensitiveKeys
from shared.runtime import DeadLetterSink, Handler, Outcome, Result
from shared.topology import Consumer, FunctionSettings, RetryPolicy, Topic, Topology
from shared.wire import Envelope

if TYPE_CHECKING:
    from shared.publisher import Publisher, PublisherSettings
    from shared.worker import PullWorker, WorkerSettings

# Public name -> the module that defines it, imported on first access (PEP 562).
_LAZY = {
    "Publisher": "shared.publisher",
    "PublisherSettings": "shared.publisher",
    "PullWorker": "shared.worker",
    "WorkerSettings": "shared.worker",
}

__all__ = [
    "REDACTED",
    "ConfigurationError",
    "Consumer",
    "ConsumerApp",
    "DeadLetterSink",
    "Delivery",
    "Envelope",
    "Event",
    "EventRegistry",
    "EventValidationError",
    "FunctionSettings",
    "Handler",
    "MalformedMessageError",
    "Outcome",
    "PermanentError",
    "PublishError",
    "Publisher",
    "PublisherSettings",
    "PullWorker",
    "RawMessage",
    "Result",
    "RetryPolicy",
    "RetryableError",
    "Sensitive",
    "SensitiveKeys",
    "ToolkitError",
    "Topic",
    "Topology",
    "TopologyError",
    "UnknownEventTypeError",
    "WorkerSettings",
    "consumer",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'shared' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access does not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
