"""Stores for idempotency, the audit log and idempotent effects.

:func:`open_store` picks the implementation from ``PUBSUB_KIT_STORE``:

- ``sqlite:///path/to/state.db`` (or a bare path): the embedded store, the local default
  (``.pubsub-kit/dev.db``, the file ``pubsub-kit dev`` gives its functions);
- ``firestore`` or ``firestore://DATABASE``: Firestore, the default on GCP (where ``K_SERVICE``
  is set), because a function instance's disk is gone with the instance. Its collections are
  named after ``PUBSUB_KIT_STORE_PREFIX`` (default ``pubsubkit``), which Terraform sets to match
  its TTL policies and indexes.
"""

from __future__ import annotations

from shared import config
from shared.errors import ConfigurationError
from shared.stores.base import AuditEntry, ClaimState, Store

__all__ = ["AuditEntry", "ClaimState", "Store", "open_store"]


def open_store(url: str | None = None) -> Store:
    """Open the store named by ``url``, else by ``PUBSUB_KIT_STORE``, else the default.

    Raises:
        ConfigurationError: the URL names no known store.
    """
    url = url or config.store_url()
    if url == "firestore" or url.startswith("firestore://"):
        from shared.stores.firestore import FirestoreStore

        database = url.removeprefix("firestore").removeprefix("://") or None
        return FirestoreStore(database=database, prefix=config.store_prefix())
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        path = path[1:] if path.startswith("/") else path  # sqlite:///rel  vs  sqlite:////abs
        return _sqlite(path)
    if "://" not in url:
        return _sqlite(url)
    raise ConfigurationError(
        f"PUBSUB_KIT_STORE={url!r} names no known store; expected sqlite:///PATH, "
        "firestore or firestore://DATABASE"
    )


def _sqlite(path: str) -> Store:
    from shared.stores.sqlite import SqliteStore

    return SqliteStore(path)
