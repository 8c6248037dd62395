"""Where the toolkit reads its configuration: one function per setting, one precedence each.

Every setting is read from the environment when it is asked for, never cached at import, so a
test or the local runtime can change it. The same variables work locally and on GCP:

=========================  ===================================================================
variable                   meaning
=========================  ===================================================================
``PUBSUB_PROJECT_ID``      the project; wins over the two below, because ``emulator.sh env``
                           and ``gcloud beta emulators pubsub env-init`` set it for the
                           emulator while a shell may still hold a real ``GOOGLE_CLOUD_PROJECT``
``GOOGLE_CLOUD_PROJECT``   the project, as Terraform and most Google tools set it
``GCP_PROJECT``            the project, as older Cloud Functions runtimes set it
``PUBSUB_EMULATOR_HOST``   ``host:port`` of the Pub/Sub emulator; unset on GCP
``PUBSUB_KIT_STORE``       ``sqlite:///PATH``, ``firestore`` or ``firestore://DATABASE``
``PUBSUB_KIT_SOURCE``      ``ce-source`` of published events (default from ``K_SERVICE``)
``K_SERVICE``              set by Cloud Run / Cloud Functions: we are on GCP
``PUBSUB_KIT_ROOT``        the project folder for the local tools (default: found from cwd)
=========================  ===================================================================
"""

from __future__ import annotations

import os
from pathlib import Path

from shared.errors import ConfigurationError

PROJECT_VARIABLES = ("PUBSUB_PROJECT_ID", "GOOGLE_CLOUD_PROJECT", "GCP_PROJECT")
DEFAULT_SQLITE_PATH = ".pubsub-kit/dev.db"  # in the project; `pubsub-kit dev` uses this file too


def project_id(explicit: str | None = None) -> str:
    """The GCP project: ``explicit``, else the first of :data:`PROJECT_VARIABLES` that is set.

    Raises:
        ConfigurationError: none is set; the message says how to set one.
    """
    project = explicit or find_project_id()
    if not project:
        raise ConfigurationError(
            'no project id: set PUBSUB_PROJECT_ID (locally: eval "$(pubsub-kit emulator env)") '
            "or GOOGLE_CLOUD_PROJECT"
        )
    return project


def find_project_id() -> str | None:
    """Like :func:`project_id`, but ``None`` when no project is configured."""
    return next((os.environ[v] for v in PROJECT_VARIABLES if os.environ.get(v)), None)


def emulator_host() -> str | None:
    """``PUBSUB_EMULATOR_HOST`` when the Pub/Sub client library talks to the emulator."""
    return os.environ.get("PUBSUB_EMULATOR_HOST") or None


def on_gcp() -> bool:
    """True inside Cloud Functions (2nd gen) or Cloud Run, which set ``K_SERVICE``."""
    return bool(os.environ.get("K_SERVICE"))


def store_url() -> str:
    """``PUBSUB_KIT_STORE``, else Firestore on GCP, else SQLite.

    Firestore on GCP because an instance's local disk dies with the instance.
    """
    return os.environ.get("PUBSUB_KIT_STORE") or (
        "firestore" if on_gcp() else f"sqlite:///{DEFAULT_SQLITE_PATH}"
    )


def store_prefix() -> str:
    """Prefix of the Firestore collections (``PUBSUB_KIT_STORE_PREFIX``, default ``pubsubkit``)."""
    return os.environ.get("PUBSUB_KIT_STORE_PREFIX") or "pubsubkit"


def event_source() -> str:
    """``ce-source`` of the events this process publishes: ``/services/<Cloud Run service>``."""
    service = os.environ.get("PUBSUB_KIT_SOURCE") or os.environ.get("K_SERVICE")
    return service if service and service.startswith("/") else f"/services/{service or 'local'}"


def log_level() -> str:
    """``PUBSUB_KIT_LOG_LEVEL``, default ``INFO``."""
    return os.environ.get("PUBSUB_KIT_LOG_LEVEL", "INFO").upper()


def project_root() -> Path:
    """The folder holding the user's ``functions/``: where the local tools read and write.

    ``PUBSUB_KIT_ROOT`` if set (``pubsub-kit --root DIR`` sets it); else the nearest folder from
    the working directory up that has a ``pyproject.toml`` and a ``functions/`` folder. Never
    where this package is installed: the tools write into the user's project.

    Raises:
        ConfigurationError: neither; the message says what a project folder is.
    """
    explicit = os.environ.get("PUBSUB_KIT_ROOT")
    if explicit:
        return Path(explicit).resolve()
    here = Path.cwd().resolve()
    found = find_project_root(here)
    if found is None:
        raise ConfigurationError(
            f"no pubsub-kit project in {here} or above: a project is a folder with a "
            "pyproject.toml and a functions/ folder; run from inside one, pass --root DIR, "
            "or create one with `pubsub-kit new project DIR`"
        )
    return found


def find_project_root(start: Path) -> Path | None:
    """The nearest folder from ``start`` up with a ``pyproject.toml`` and a ``functions/``."""
    for folder in (start, *start.parents):
        if is_project_root(folder):
            return folder
    return None


def is_project_root(folder: Path) -> bool:
    """Whether ``folder`` has what makes a pubsub-kit project: pyproject.toml and functions/."""
    return (folder / "pyproject.toml").is_file() and (folder / "functions").is_dir()
