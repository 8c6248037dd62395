"""pubsub-kit: typed events, one topology, and Cloud Functions consumers for Google Cloud Pub/Sub.

The public surface is re-exported here; modules named ``_like_this`` are plumbing.
Importing ``shared`` does not import the Pub/Sub or Firestore clients: they load on first use.
"""

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
from shared.publisher import Publisher, PublisherSettings
from shared.runtime import DeadLetterSink, Handler, Outcome, Result
from shared.topology import Consumer, FunctionSettings, RetryPolicy, Topic, Topology
from shared.wire import Envelope
from shared.worker import PullWorker, WorkerSettings

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
