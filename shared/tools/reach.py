"""Can Pub/Sub be reached? Asked before a command talks to it, answered within seconds.

Without this, the client library retries an emulator that is down for minutes (a publish ended
in a bare ``TimeoutError`` after 94 s; ``provision`` printed nothing for 10 minutes), and a
machine with neither the emulator nor credentials printed ``DefaultCredentialsError`` with a
traceback. Each failure here is one sentence that says what to start or run.
"""

from __future__ import annotations

import os
import socket

from shared.errors import ToolkitError

CONNECT_TIMEOUT = 3.0  # seconds; a local emulator answers in milliseconds
CALL_TIMEOUT = 10.0  # seconds for the one API call that proves GCP access


class Unreachable(ToolkitError):
    """Pub/Sub (the emulator, or GCP) cannot be reached; the message says what to do."""


def require_pubsub(project: str) -> None:
    """Fail fast unless Pub/Sub answers for ``project``: the emulator, or GCP with credentials.

    Raises:
        Unreachable: the emulator does not accept connections, there are no credentials, or
            GCP refused the call (project unknown, permission denied).
    """
    host = os.environ.get("PUBSUB_EMULATOR_HOST")
    if host:
        _require_listening(host)
        return
    _require_credentials()
    _require_project(project)


def _require_listening(host: str) -> None:
    name, _, port = host.rpartition(":")
    try:
        address = (name.strip("[]") or "127.0.0.1", int(port))
    except ValueError:
        raise Unreachable(
            f"PUBSUB_EMULATOR_HOST is {host!r}; expected host:port, e.g. 127.0.0.1:8085"
        ) from None
    try:
        with socket.create_connection(address, timeout=CONNECT_TIMEOUT):
            return
    except OSError:
        raise Unreachable(
            f"the Pub/Sub emulator at {host} does not answer; start it with "
            "`pubsub-kit emulator start` (or ./emulator.sh start), or unset "
            "PUBSUB_EMULATOR_HOST to use GCP"
        ) from None


def _require_credentials() -> None:
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        google.auth.default()
    except DefaultCredentialsError:
        raise Unreachable(
            "no Pub/Sub to talk to: PUBSUB_EMULATOR_HOST is not set and there are no Google "
            'credentials; point at the emulator (eval "$(pubsub-kit emulator env)") or log in '
            "to GCP (gcloud auth application-default login)"
        ) from None


def _require_project(project: str) -> None:
    from google.api_core import exceptions
    from google.cloud import pubsub_v1

    client = pubsub_v1.PublisherClient()
    try:
        pages = client.list_topics(
            request={"project": f"projects/{project}", "page_size": 1}, timeout=CALL_TIMEOUT
        )
        next(iter(pages), None)
    except exceptions.PermissionDenied:
        raise Unreachable(
            f"GCP refused to list the topics of project {project!r} (permission denied); "
            "check --project and the account gcloud auth application-default login set"
        ) from None
    except (exceptions.NotFound, exceptions.InvalidArgument):
        raise Unreachable(f"project {project!r} is not a GCP project Pub/Sub knows") from None
    except (exceptions.GoogleAPICallError, exceptions.RetryError) as exc:
        raise Unreachable(
            f"Pub/Sub on GCP did not answer for project {project!r} within "
            f"{CALL_TIMEOUT:g} s ({type(exc).__name__}); check the network"
        ) from None
    finally:
        client.transport.close()
