"""Offline checks of the Terraform under ``infra/``.

Nothing here reaches Google Cloud or the Terraform registry:

- the HCL is parsed with python-hcl2 and checked for what the deployment relies on (private
  functions, authenticated push, retry and dead-letter policies, least-privilege IAM, resources
  keyed by name, bounded versions, described variables and outputs);
- the parts that need no provider (the naming module, the variable validations) are run by the
  Terraform CLI itself in a scratch directory, so their logic is tested, not just read;
- ``infra/topology.json`` is compared with the Python topology it is generated from.

The Terraform CLI (>= 1.5) is required: the tests that need it fail, rather than skip, without it.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import hcl2
import pytest

from shared import Consumer, Event, FunctionSettings, RetryPolicy, Topic, Topology, TopologyError
from shared.system.events import NotificationRequested, OrderDispatched, PostLiked, UserUpdated
from shared.system.topology import TOPOLOGY

REPO = Path(__file__).resolve().parents[1]
INFRA = REPO / "infra"
TOPOLOGY_JSON = INFRA / "topology.json"
MODULES = sorted(p for p in (INFRA / "modules").iterdir() if p.is_dir())
MODULE_DIRS = [INFRA, *MODULES]
FOUR_FILES = ("versions.tf", "variables.tf", "main.tf", "outputs.tf")
TF_FILES = sorted(p for p in INFRA.rglob("*.tf") if ".terraform" not in p.parts)
CONSUMER_MAIN = INFRA / "modules" / "consumer" / "main.tf"

TERRAFORM_TIMEOUT = 120  # seconds per CLI call; fmt and the offline applies take about 1 s

# Every role the deployment grants. Adding one is a deliberate change, made here too.
ALLOWED_ROLES = {
    "roles/cloudtrace.agent",  # a function, on the project, only with enable_tracing
    "roles/datastore.user",  # a function, on the project, conditioned on the store's database
    "roles/iam.serviceAccountTokenCreator",  # Pub/Sub service agent, on the push identity
    "roles/pubsub.publisher",  # functions and the service agent, on topics
    "roles/pubsub.subscriber",  # Pub/Sub service agent, on each push subscription
    "roles/run.invoker",  # the push identity, on each function's Cloud Run service
    "roles/run.builder",  # the build identity, on the project (images, build logs, sources)
}

# Every API the deployment enables, and nothing else: each has a user here.
# (tests/test_infra_observability.py evaluates which are enabled under which toggles.)
OPTIONAL_APIS = {
    "cloudtrace.googleapis.com": "enable_tracing",  # the functions' spans
    "monitoring.googleapis.com": "enable_monitoring",  # alert policies
}
REQUIRED_APIS = {
    "pubsub.googleapis.com",
    "cloudfunctions.googleapis.com",
    "run.googleapis.com",  # functions run as Cloud Run services
    "cloudbuild.googleapis.com",  # function builds
    "artifactregistry.googleapis.com",  # function images
    "firestore.googleapis.com",
    "storage.googleapis.com",  # source archives
    "iam.googleapis.com",  # service accounts
    "logging.googleapis.com",  # build and function logs
    "cloudresourcemanager.googleapis.com",  # project lookup, project-level IAM
}

FUNCTION_ID = re.compile(r"^[a-z][a-z0-9-]{2,61}[a-z0-9]$")  # Cloud Functions (2nd gen)
SERVICE_ACCOUNT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")  # IAM

Block = dict[str, Any]


# --- HCL helpers ---------------------------------------------------------------------------
# python-hcl2 8.x keeps string quotes ('"hashicorp/google"'), wraps expressions in "${...}",
# quotes block labels and marks blocks with "__is_block__"; 7.x does none of that. The helpers
# accept both.


@functools.cache
def parse(path: Path) -> Block:
    with path.open(encoding="utf-8") as handle:
        return hcl2.load(handle)


def text(value: Any) -> str:
    """An attribute as source-like text: literal strings unquoted, expressions unwrapped."""
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            return value[1:-1]
        if value.startswith("${") and value.endswith("}"):
            return value[2:-1]
        return value
    return json.dumps(value)


def label(key: str) -> str:
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == '"' else key


def blocks(body: Block, name: str) -> list[Block]:
    """The nested blocks called ``name`` (``push_config``, ``lifecycle``...)."""
    found = body.get(name, [])
    return [b for b in (found if isinstance(found, list) else [found]) if isinstance(b, dict)]


def dynamic_blocks(body: Block) -> dict[str, Block]:
    """The ``dynamic "<name>"`` blocks of ``body``, by name."""
    return {
        label(key): value
        for dynamic in blocks(body, "dynamic")
        for key, value in dynamic.items()
        if not key.startswith("__")
    }


Labelled = tuple[Path, tuple[str, ...], Block]


def labelled(kind: str, files: list[Path] | None = None) -> Iterator[Labelled]:
    """Every ``kind`` block ("resource", "variable", "module"...) as (file, labels, body)."""
    depth = 2 if kind in ("resource", "data") else 1
    for path in files or TF_FILES:
        for entry in parse(path).get(kind, []):
            yield from _unnest(path, entry, depth, ())


def _unnest(path: Path, entry: Block, depth: int, labels: tuple[str, ...]) -> Iterator[Any]:
    for key, value in entry.items():
        if key.startswith("__"):
            continue
        if depth == 1:
            yield path, (*labels, label(key)), value
        else:
            yield from _unnest(path, value, depth - 1, (*labels, label(key)))


def resources(resource_type: str) -> list[tuple[Path, str, Block]]:
    """Every ``resource "<resource_type>" "<name>"`` as (file, name, body)."""
    return [
        (path, labels[1], body)
        for path, labels, body in labelled("resource")
        if labels[0] == resource_type
    ]


def the_resource(resource_type: str) -> Block:
    found = resources(resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {[n for _, n, _ in found]}"
    return found[0][2]


def block_named(kind: str, name: str, path: Path) -> Block:
    (body,) = [b for _, labels, b in labelled(kind, [path]) if labels == (name,)]
    return body


def local_value(path: Path, name: str) -> str:
    return text(next(entry[name] for entry in parse(path)["locals"] if name in entry))


def tf_files_of(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.tf"))


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


# --- Terraform CLI -------------------------------------------------------------------------


def terraform_binary() -> str:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.fail(
            "the Terraform CLI (>= 1.5) is not on PATH; the infra tests need it (terraform fmt "
            "and offline applies). Install it: https://developer.hashicorp.com/terraform/install"
        )
    return binary


def run_terraform(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
    return subprocess.run(
        [terraform_binary(), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TERRAFORM_TIMEOUT,
        check=False,
    )


def apply_offline(directory: Path) -> subprocess.CompletedProcess[str]:
    """``init`` and ``apply`` a configuration that uses no provider (no registry access)."""
    init = run_terraform("init", "-no-color", "-input=false", cwd=directory)
    assert init.returncode == 0, init.stdout + init.stderr
    return run_terraform("apply", "-no-color", "-input=false", "-auto-approve", cwd=directory)


def terraform_outputs(directory: Path) -> dict[str, Any]:
    result = run_terraform("output", "-no-color", "-json", cwd=directory)
    assert result.returncode == 0, result.stderr
    return {name: output["value"] for name, output in json.loads(result.stdout).items()}


def one_line(message: str) -> str:
    """Terraform wraps its error messages; join them back for ``in`` checks."""
    return " ".join(message.replace("│", " ").split())


def copy_naming_module(directory: Path, main_tf: str) -> Path:
    shutil.copytree(INFRA / "modules" / "naming", directory / "naming")
    (directory / "main.tf").write_text(main_tf, encoding="utf-8")
    return directory


# --- formatting, layout and conventions ----------------------------------------------------


def test_terraform_files_are_formatted() -> None:
    result = run_terraform("fmt", "-check", "-recursive", "-diff", "-no-color", "infra", cwd=REPO)
    assert result.returncode == 0, (
        "terraform fmt would change these files (run `terraform fmt -recursive infra`):\n"
        + result.stdout
        + result.stderr
    )


@pytest.mark.parametrize("path", TF_FILES, ids=rel)
def test_every_tf_file_parses(path: Path) -> None:
    assert isinstance(parse(path), dict)


@pytest.mark.parametrize("directory", MODULE_DIRS, ids=rel)
def test_root_and_every_module_have_the_four_files(directory: Path) -> None:
    missing = [name for name in FOUR_FILES if not (directory / name).is_file()]
    assert not missing, f"{rel(directory)} lacks {missing}"


def test_the_reusable_units_are_modules() -> None:
    assert {p.name for p in MODULES} >= {"pubsub_topic", "consumer", "naming"}


@pytest.mark.parametrize("directory", MODULE_DIRS, ids=rel)
def test_every_variable_has_a_type_and_a_description(directory: Path) -> None:
    variables = list(labelled("variable", tf_files_of(directory)))
    assert variables, f"{rel(directory)} declares no variable"
    for path, (name,), body in variables:
        assert "type" in body, f"variable {name!r} in {rel(path)} has no type"
        assert text(body.get("description", "")).strip(), (
            f"variable {name!r} in {rel(path)} has no description"
        )


@pytest.mark.parametrize("directory", MODULE_DIRS, ids=rel)
def test_every_output_has_a_description(directory: Path) -> None:
    declared = list(labelled("output", tf_files_of(directory)))
    assert declared, f"{rel(directory)} declares no output"
    for path, (name,), body in declared:
        assert text(body.get("description", "")).strip(), (
            f"output {name!r} in {rel(path)} has no description"
        )


def test_variables_and_outputs_live_in_their_own_files() -> None:
    for kind, home in (("variable", "variables.tf"), ("output", "outputs.tf")):
        for path, (name,), _ in labelled(kind):
            assert path.name == home, f"{kind} {name!r} is declared in {rel(path)}, not {home}"


def _has_bounds(constraint: str) -> bool:
    parts = [p.strip() for p in constraint.split(",")]
    pessimistic = any(p.startswith("~>") for p in parts)
    lower = pessimistic or any(p.startswith(">=") for p in parts)
    upper = pessimistic or any(p.startswith("<") and not p.startswith("<=") for p in parts)
    return lower and upper


@pytest.mark.parametrize("directory", MODULE_DIRS, ids=rel)
def test_versions_tf_bounds_terraform_and_every_provider(directory: Path) -> None:
    settings = blocks(parse(directory / "versions.tf"), "terraform")
    assert settings, f"{rel(directory)}/versions.tf has no terraform block"
    required_version = text(settings[0].get("required_version", ""))
    assert _has_bounds(required_version), (
        f"{rel(directory)}: required_version {required_version!r} needs lower and upper bounds"
    )
    for providers in blocks(settings[0], "required_providers"):
        for name, spec in providers.items():
            if name.startswith("__"):
                continue
            assert text(spec.get("source", "")).startswith("hashicorp/"), f"{name}: no source"
            version = text(spec.get("version", ""))
            assert _has_bounds(version), (
                f"{rel(directory)}: provider {name} version {version!r} needs '>=' and '<' bounds"
            )


def test_modules_accept_the_same_provider_range_as_the_root() -> None:
    def google_range(directory: Path) -> str | None:
        for settings in blocks(parse(directory / "versions.tf"), "terraform"):
            for providers in blocks(settings, "required_providers"):
                if "google" in providers:
                    return text(providers["google"]["version"])
        return None

    root = google_range(INFRA)
    assert root is not None
    for module in MODULES:
        assert google_range(module) in (None, root), f"{rel(module)} pins google differently"


def test_per_item_resources_use_for_each_keyed_by_names_never_count() -> None:
    positional = re.compile(r"^\s*\[|\brange\(|\bcount\.index\b|\btolist\(|\blength\(")
    for kind in ("resource", "module", "data"):
        for path, labels, body in labelled(kind):
            where = f"{kind} {'.'.join(labels)} in {rel(path)}"
            assert "count" not in body, f"{where} uses count; use for_each over names"
            if "for_each" in body:
                expression = body["for_each"]
                assert not isinstance(expression, list), f"{where}: for_each over a list literal"
                assert not positional.search(text(expression)), (
                    f"{where}: for_each {text(expression)!r} is keyed by position, not by name"
                )


# --- IAM -----------------------------------------------------------------------------------


def test_no_public_principal_anywhere() -> None:
    for path in TF_FILES:
        for principal in ("allUsers", "allAuthenticatedUsers"):
            assert principal not in path.read_text(encoding="utf-8"), f"{rel(path)}: {principal}"


def test_no_primitive_role_anywhere() -> None:
    primitive = re.compile(r"roles/(owner|editor|viewer)\b")
    for path in TF_FILES:
        found = primitive.findall(path.read_text(encoding="utf-8"))
        assert not found, f"{rel(path)} grants primitive roles {found}"


def test_only_the_expected_roles_are_granted() -> None:
    granted = {
        role
        for path in TF_FILES
        for role in re.findall(r"roles/[A-Za-z.]*[A-Za-z]", path.read_text(encoding="utf-8"))
    }
    assert granted <= ALLOWED_ROLES, f"unexpected roles: {sorted(granted - ALLOWED_ROLES)}"


def test_project_level_grants_are_only_firestore_on_its_database_the_build_role_and_tracing() -> (
    None
):
    grants = {(path, name): body for path, name, body in resources("google_project_iam_member")}
    assert set(grants) == {
        (CONSUMER_MAIN, "function"),
        (CONSUMER_MAIN, "tracing"),
        (INFRA / "main.tf", "build"),
    }

    store = grants[(CONSUMER_MAIN, "function")]
    assert text(store["role"]) == "each.key"
    project_roles = local_value(CONSUMER_MAIN, "project_roles")
    assert re.findall(r"roles/[A-Za-z.]*[A-Za-z]", project_roles) == ["roles/datastore.user"]
    assert "var.function.uses_store" in project_roles
    # Firestore has no IAM policy of its own: a condition keeps the grant to one database.
    (condition,) = blocks(store, "condition")
    assert text(condition["expression"]) == (
        'resource.name == \\"projects/${var.project_id}/databases/${var.firestore_database}\\"'
    )
    consumer = block_named("module", "consumer", INFRA / "main.tf")
    assert text(consumer["firestore_database"]) == "local.firestore_database"
    assert local_value(INFRA / "main.tf", "firestore_database") == "(default)"

    build = grants[(INFRA / "main.tf", "build")]
    assert text(build["role"]) == "roles/run.builder"
    assert text(build["for_each"]) == "google_service_account.build"
    assert text(build["member"]) == "each.value.member"

    # Cloud Trace grants on the project only; which roles, and when, is evaluated in
    # tests/test_infra_observability.py (roles/cloudtrace.agent, with enable_tracing only).
    tracing = grants[(CONSUMER_MAIN, "tracing")]
    assert text(tracing["for_each"]) == "module.observability.project_roles"
    assert text(tracing["role"]) == "each.key"
    assert text(tracing["member"]) == "google_service_account.function.member"


def test_functions_are_built_by_a_dedicated_account_whose_role_is_granted_first() -> None:
    """New projects' default build account may lack the permissions to build functions."""
    (build_account,) = [
        body for path, name, body in resources("google_service_account") if name == "build"
    ]
    assert text(build_account["for_each"]) == (
        "var.build_service_account == null ? toset([var.build_account_id]) : toset([])"
    )
    chosen = local_value(INFRA / "main.tf", "build_service_account")
    assert "var.build_service_account" in chosen
    assert "google_service_account.build[var.build_account_id].id" in chosen
    consumer = block_named("module", "consumer", INFRA / "main.tf")
    assert text(consumer["build_service_account"]) == "local.build_service_account"
    assert "google_project_iam_member.build" in [text(d) for d in consumer["depends_on"]]
    (build_config,) = blocks(the_resource("google_cloudfunctions2_function"), "build_config")
    assert text(build_config["service_account"]) == "var.build_service_account"


def test_the_pubsub_service_agent_exists_before_it_is_granted_anything() -> None:
    (identity,) = [
        body for _, name, body in resources("google_project_service_identity") if name == "pubsub"
    ]
    assert text(identity["service"]) == "pubsub.googleapis.com"
    assert text(identity["provider"]) == "google-beta"
    token_creator = the_resource("google_service_account_iam_member")
    assert [text(d) for d in token_creator["depends_on"]] == [
        "google_project_service_identity.pubsub"
    ]
    # Every other grant to the agent is in the consumer module, which waits for the identity.
    consumer = block_named("module", "consumer", INFRA / "main.tf")
    assert "google_project_service_identity.pubsub" in [text(d) for d in consumer["depends_on"]]
    agent_users = [
        (rel(path), name)
        for path, labels, body in labelled("resource")
        for name in [labels[1]]
        if "pubsub_service_agent" in json.dumps(body) and path != CONSUMER_MAIN
    ]
    assert agent_users == [("infra/main.tf", "push_token_creator")]


def test_functions_accept_only_internal_traffic_by_default() -> None:
    """Same-project Pub/Sub push to the run.app URL is internal; the internet is not."""
    root = block_named("variable", "function_ingress_settings", INFRA / "variables.tf")
    assert text(root["default"]) == "ALLOW_INTERNAL_ONLY"
    module = block_named("variable", "ingress_settings", INFRA / "modules/consumer/variables.tf")
    assert text(module["default"]) == "ALLOW_INTERNAL_ONLY"
    consumer = block_named("module", "consumer", INFRA / "main.tf")
    assert text(consumer["ingress_settings"]) == "var.function_ingress_settings"


def test_functions_are_invoked_only_by_the_push_identity() -> None:
    invoker = the_resource("google_cloud_run_v2_service_iam_member")
    assert text(invoker["role"]) == "roles/run.invoker"
    assert text(invoker["name"]) == "google_cloudfunctions2_function.this.service_config[0].service"
    assert "push_invoker_email" in text(invoker["member"])
    authoritative = re.compile(
        r"google_(cloudfunctions2?_function|cloud_run(_v2)?_service)_iam_(policy|binding)"
    )
    for path, labels, _ in labelled("resource"):
        assert not authoritative.match(labels[0]), (
            f"{rel(path)}: authoritative IAM on a function would drop the push identity's grant"
        )


def test_pubsub_service_agent_can_dead_letter_and_sign_push_tokens() -> None:
    def agent_grants(resource_type: str, role: str) -> list[str]:
        return [
            text(body["for_each"])
            for _, _, body in resources(resource_type)
            if text(body["role"]) == role and "pubsub_service_agent" in text(body["member"])
        ]

    assert agent_grants("google_pubsub_topic_iam_member", "roles/pubsub.publisher") == [
        "var.dead_letter_topics"
    ]
    assert agent_grants("google_pubsub_subscription_iam_member", "roles/pubsub.subscriber") == [
        "var.subscriptions"
    ]
    token_creator = the_resource("google_service_account_iam_member")
    assert text(token_creator["role"]) == "roles/iam.serviceAccountTokenCreator"
    assert text(token_creator["service_account_id"]) == "google_service_account.push_invoker.name"
    assert "pubsub_service_agent" in text(token_creator["member"])
    assert local_value(INFRA / "main.tf", "pubsub_service_agent") == (
        "service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
    )


def test_functions_publish_only_to_their_declared_topics_and_their_dead_letter_topics() -> None:
    grants = sorted(
        (text(body["for_each"]), text(body["role"]))
        for _, _, body in resources("google_pubsub_topic_iam_member")
        if text(body["member"]) == "google_service_account.function.member"
    )
    assert grants == [
        ("toset(var.function.publishes_to)", "roles/pubsub.publisher"),
        ("var.dead_letter_topics", "roles/pubsub.publisher"),
    ]


# --- Pub/Sub -------------------------------------------------------------------------------


def test_push_subscription_is_authenticated_and_has_retry_and_dead_letter_policies() -> None:
    pushes = [r for r in resources("google_pubsub_subscription") if blocks(r[2], "push_config")]
    assert pushes, "no push subscription resource"
    for _, name, body in pushes:
        assert text(body["for_each"]) == "var.subscriptions", f"{name}: one per subscription"
        assert text(body["name"]) == "each.key"
        (push,) = blocks(body, "push_config")
        assert "service_config[0].uri" in text(push["push_endpoint"])
        (oidc,) = blocks(push, "oidc_token")
        assert text(oidc["service_account_email"]) == "var.push_invoker_email"
        assert "service_config[0].uri" in text(oidc["audience"])
        # The runtime reads the standard push body (message, subscription, deliveryAttempt).
        assert "no_wrapper" not in push, f"{name}: the push payload must stay wrapped"
        dynamic = dynamic_blocks(body)
        assert {"retry_policy", "dead_letter_policy"} <= set(dynamic), f"{name}: dynamic policies"
        (dead_letter,) = blocks(dynamic["dead_letter_policy"], "content")
        assert "google_pubsub_topic.dead_letter[" in text(dead_letter["dead_letter_topic"])
        assert "max_delivery_attempts" in text(dead_letter["max_delivery_attempts"])
        (retry,) = blocks(dynamic["retry_policy"], "content")
        assert "minimum_backoff" in text(retry["minimum_backoff"])
        assert "maximum_backoff" in text(retry["maximum_backoff"])
        assert text(body["filter"]) == 'each.value.filter == "" ? null : each.value.filter'
        assert text(body["enable_message_ordering"]) == "each.value.enable_message_ordering"
        assert text(body["ack_deadline_seconds"]) == "each.value.ack_deadline_seconds"
        (expiration,) = blocks(body, "expiration_policy")
        assert text(expiration["ttl"]) == "", f"{name}: a quiet subscription must never expire"


def test_every_dead_letter_topic_gets_a_pull_subscription_of_the_same_name() -> None:
    dead_letter_topics = [
        name
        for _, name, body in resources("google_pubsub_topic")
        if text(body.get("for_each", "")) == "var.dead_letter_topics"
    ]
    assert dead_letter_topics == ["dead_letter"]
    pulls = [
        body
        for _, _, body in resources("google_pubsub_subscription")
        if not blocks(body, "push_config")
        and text(body.get("for_each", "")) == "var.dead_letter_topics"
    ]
    assert len(pulls) == 1, "one pull subscription keyed by dead_letter_topics"
    (pull,) = pulls
    assert text(pull["name"]) == "each.key", "same name as its dead-letter topic"
    assert text(pull["topic"]) == "google_pubsub_topic.dead_letter[each.key].id"
    assert "message_retention_duration" in pull
    (expiration,) = blocks(pull, "expiration_policy")
    assert text(expiration["ttl"]) == "", "dead letters must wait however long it takes"


def test_topics_take_their_retention_from_the_topology() -> None:
    topic_module = block_named("module", "topic", INFRA / "main.tf")
    assert text(topic_module["for_each"]) == "local.topics"
    assert text(topic_module["message_retention_duration"]) == (
        "each.value.message_retention_duration"
    )
    (module_topic,) = [
        body
        for path, _, body in resources("google_pubsub_topic")
        if path.parent.name == "pubsub_topic"
    ]
    assert "var.message_retention_duration" in text(module_topic["message_retention_duration"])
    assert "schema_settings" in dynamic_blocks(module_topic)


# --- functions -----------------------------------------------------------------------------


def test_function_runs_as_its_own_account_with_the_runtime_environment() -> None:
    function = the_resource("google_cloudfunctions2_function")
    (service,) = blocks(function, "service_config")
    assert text(service["service_account_email"]) == "google_service_account.function.email"
    assert text(service["ingress_settings"]) == "var.ingress_settings"
    for setting in ("available_memory", "timeout_seconds", "max_instance_count"):
        assert setting in service, setting
    assert "min_instance_count" in service
    (build,) = blocks(function, "build_config")
    assert text(build["entry_point"]) == "var.function.entry_point"
    assert text(build["runtime"]) == "var.function.runtime"
    (source,) = blocks(build, "source")
    (storage,) = blocks(source, "storage_source")
    assert text(storage["object"]) == "google_storage_bucket_object.source.name"
    managed = local_value(CONSUMER_MAIN, "managed_environment")
    assert "PUBSUB_PROJECT_ID" in managed and "GOOGLE_CLOUD_PROJECT" in managed
    assert re.search(r'uses_store\s*\?\s*\{\s*PUBSUB_KIT_STORE\s*=\s*"firestore"', managed)
    assert "PUBSUB_KIT_STORE_PREFIX = var.store_collection_prefix" in managed
    assert text(service["environment_variables"]).endswith(", local.managed_environment)"), (
        "the managed variables are merged last, so nothing can override them"
    )


def test_function_takes_its_concurrency_from_the_topology() -> None:
    (service,) = blocks(the_resource("google_cloudfunctions2_function"), "service_config")
    assert text(service["max_instance_request_concurrency"]) == "var.function.concurrency"
    consumer = block_named("module", "consumer", INFRA / "main.tf")
    assert text(consumer["function"]["concurrency"]) == "each.value.concurrency"


FUNCTION_SERVICE_VALUES = """
variable "function" {
  type = any
}

locals {
  function_threads = %(threads)s
}

output "available_cpu" {
  value = jsonencode(%(cpu)s)
}

output "threads" {
  value = merge(local.function_threads, var.function.environment)["THREADS"]
}
"""


@pytest.mark.parametrize(
    ("concurrency", "environment", "cpu", "threads"),
    [
        (1, {}, None, "1"),  # the memory's default CPU: a fraction of a vCPU for 256Mi
        (2, {}, "1", "2"),
        (1000, {}, "1", "1000"),
        (8, {"THREADS": "16"}, "1", "16"),  # a THREADS the deployment sets wins
    ],
)
def test_a_function_serving_several_requests_at_once_gets_a_vcpu_and_as_many_threads(
    tmp_path: Path, concurrency: int, environment: dict[str, str], cpu: str | None, threads: str
) -> None:
    """GCP refuses concurrency above 1 under one vCPU; functions-framework needs the threads."""
    (service,) = blocks(the_resource("google_cloudfunctions2_function"), "service_config")
    assert text(service["environment_variables"]).startswith("merge(local.function_threads, ")
    config = FUNCTION_SERVICE_VALUES % {
        "threads": local_value(CONSUMER_MAIN, "function_threads"),
        "cpu": text(service["available_cpu"]),
    }
    (tmp_path / "main.tf").write_text(config, encoding="utf-8")
    function = {"concurrency": concurrency, "environment": environment}
    (tmp_path / "terraform.tfvars.json").write_text(json.dumps({"function": function}))
    result = apply_offline(tmp_path)
    assert result.returncode == 0, config + result.stdout + result.stderr
    outputs = terraform_outputs(tmp_path)
    assert json.loads(outputs["available_cpu"]) == cpu
    assert outputs["threads"] == threads


def test_function_and_account_names_come_from_the_naming_module() -> None:
    assert text(the_resource("google_cloudfunctions2_function")["name"]) == "local.function_name"
    assert local_value(CONSUMER_MAIN, "function_name") == "module.naming.function_name"
    (function_account,) = [
        body for path, _, body in resources("google_service_account") if path == CONSUMER_MAIN
    ]
    assert text(function_account["account_id"]) == "module.naming.service_account_id"


def test_source_archive_name_carries_its_hash() -> None:
    archive = the_resource("google_storage_bucket_object")
    assert "local.archive_hash" in text(archive["name"])
    archive_hash = local_value(CONSUMER_MAIN, "archive_hash")
    assert re.search(r"file(sha256|md5)\(var\.archive_path\)", archive_hash), archive_hash
    consumer = block_named("module", "consumer", INFRA / "main.tf")
    assert text(consumer["archive_path"]) == "${local.package_dir}/${each.key}.zip"
    assert "var.package_dir" in local_value(INFRA / "main.tf", "package_dir")
    package_dir = block_named("variable", "package_dir", INFRA / "variables.tf")
    assert text(package_dir["default"]) == "../dist-functions"


# --- project resources ---------------------------------------------------------------------


def test_source_bucket_is_private_and_versioned() -> None:
    bucket = the_resource("google_storage_bucket")
    assert bucket["uniform_bucket_level_access"] is True
    assert text(bucket["public_access_prevention"]) == "enforced"
    (versioning,) = blocks(bucket, "versioning")
    assert versioning["enabled"] is True


def test_exactly_the_required_apis_are_enabled_and_stay_enabled_on_destroy() -> None:
    enabled = set(
        re.findall(r'"([a-z0-9]+\.googleapis\.com)"', local_value(INFRA / "main.tf", "apis"))
    )
    expected = REQUIRED_APIS | set(OPTIONAL_APIS)
    assert enabled == expected, (
        f"not enabled: {sorted(expected - enabled)}; unused: {sorted(enabled - expected)}"
    )
    assert the_resource("google_project_service")["disable_on_destroy"] is False


def test_firestore_database_is_the_native_default() -> None:
    database = the_resource("google_firestore_database")
    assert text(database["type"]) == "FIRESTORE_NATIVE"
    assert '"(default)"' in text(database["for_each"])
    assert "var.firestore_location" in text(database["location_id"])
    assert text(database["deletion_policy"]) == "var.firestore_deletion_policy"


def test_the_audit_log_database_is_delete_protected_by_default() -> None:
    database = the_resource("google_firestore_database")
    assert text(database["delete_protection_state"]) == (
        'var.firestore_delete_protection ? "DELETE_PROTECTION_ENABLED" : '
        '"DELETE_PROTECTION_DISABLED"'
    )
    protection = block_named("variable", "firestore_delete_protection", INFRA / "variables.tf")
    assert protection["default"] is True


def test_ttl_fields_expire_and_are_exempt_from_single_field_indexes() -> None:
    field = the_resource("google_firestore_field")
    assert text(field["field"]) == "expire_at"
    assert blocks(field, "ttl_config")
    (index_config,) = blocks(field, "index_config")
    assert not [k for k in index_config if not k.startswith("__")], "an empty index_config"


def test_audit_queries_have_their_composite_indexes() -> None:
    """Real Firestore refuses the audit log's queries without these; the emulator does not."""
    index = the_resource("google_firestore_index")
    assert "_audit" in text(index["collection"])
    assert "fields" in dynamic_blocks(index)
    wanted = [
        ["time", "event_id"],
        ["subject", "time", "event_id"],
        ["actor", "time", "event_id"],
        ["event_type", "time", "event_id"],
        ["subject", "actor", "time", "event_id"],
    ]
    declared = json.loads(local_value(INFRA / "main.tf", "audit_index_fields"))
    indexes = [[field.strip('"') for field in fields] for fields in declared.values()]
    for fields in wanted:
        assert fields in indexes, fields
    # pubsub-kit audit reads newest first: each index in both directions.
    both = local_value(INFRA / "main.tf", "audit_indexes")
    assert '"ASCENDING", "DESCENDING"' in both and "local.audit_index_fields" in both


def test_terraform_reads_everything_from_topology_json() -> None:
    assert local_value(INFRA / "main.tf", "topology") == (
        'jsondecode(file("${path.module}/topology.json"))'
    )
    for_each = {
        labels[0]: text(body["for_each"])
        for _, labels, body in labelled("module", [INFRA / "main.tf"])
    }
    assert for_each == {"topic": "local.topics", "consumer": "local.consumers"}


# --- the topology --------------------------------------------------------------------------


@functools.cache
def checked_in_topology() -> Block:
    topology: Block = json.loads(TOPOLOGY_JSON.read_text(encoding="utf-8"))
    return topology


def test_checked_in_topology_json_matches_the_python_topology() -> None:
    fresh = json.dumps(TOPOLOGY.to_terraform(), indent=2, sort_keys=True) + "\n"
    assert TOPOLOGY_JSON.read_text(encoding="utf-8") == fresh, (
        "infra/topology.json is stale: regenerate it with `pubsub-kit topology export --terraform`"
    )


@pytest.mark.parametrize("name", sorted(TOPOLOGY.subscriptions))
def test_subscription_policies_in_topology_json_match_the_declarations(name: str) -> None:
    declared = TOPOLOGY.subscriptions[name]
    consumer = declared.consumer
    exported = checked_in_topology()["subscriptions"][name]
    assert exported["topic"] == declared.topic.name
    assert exported["consumer"] == consumer.name
    assert exported["filter"] == (consumer.filter or "")
    assert exported["max_delivery_attempts"] == consumer.max_delivery_attempts
    assert exported["ack_deadline_seconds"] == consumer.ack_deadline
    assert exported["enable_message_ordering"] == consumer.ordered
    assert float(exported["minimum_backoff"].removesuffix("s")) == consumer.retry.minimum_backoff
    assert float(exported["maximum_backoff"].removesuffix("s")) == consumer.retry.maximum_backoff
    assert exported["dead_letter_topic"] == declared.dead_letter_topic
    assert checked_in_topology()["dead_letter_topics"][declared.dead_letter_topic] == {
        "consumer": consumer.name,
        "source_subscription": name,
    }


def test_topology_json_has_no_dangling_names() -> None:
    topology = checked_in_topology()
    for name, sub in topology["subscriptions"].items():
        assert sub["topic"] in topology["topics"], name
        assert sub["consumer"] in topology["consumers"], name
        assert sub["dead_letter_topic"] in topology["dead_letter_topics"], name
    for name, dead_letter in topology["dead_letter_topics"].items():
        assert dead_letter["source_subscription"] in topology["subscriptions"], name
    for name, consumer in topology["consumers"].items():
        for topic in consumer["subscribes_to"] + consumer["publishes_to"]:
            assert topic in topology["topics"], f"{name} -> {topic}"


@pytest.mark.parametrize("name", sorted(TOPOLOGY.consumers))
def test_every_consumer_has_a_deployable_function_folder(name: str) -> None:
    entry = REPO / checked_in_topology()["consumers"][name]["source_dir"] / "main.py"
    assert entry.is_file(), f"consumer {name!r} has no {rel(entry)} for `pubsub-kit package`"


# --- Terraform itself, where no provider is needed ------------------------------------------


def test_naming_gives_valid_distinct_ids_for_every_consumer(tmp_path: Path) -> None:
    names = sorted(checked_in_topology()["consumers"])
    copy_naming_module(
        tmp_path,
        f"""
module "naming" {{
  source   = "./naming"
  for_each = toset({json.dumps(names)})
  consumer = each.key
}}

output "names" {{
  value = {{ for k, m in module.naming : k => [m.function_name, m.service_account_id] }}
}}
""",
    )
    result = apply_offline(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    derived = terraform_outputs(tmp_path)["names"]
    assert sorted(derived) == names
    for consumer, (function_name, account_id) in derived.items():
        assert function_name == consumer.replace("_", "-")
        assert FUNCTION_ID.match(function_name), function_name
        assert SERVICE_ACCOUNT_ID.match(account_id), account_id
    assert len({account for _, account in derived.values()}) == len(derived)


@pytest.mark.parametrize(
    ("consumer", "function_name", "account_id"),
    [
        ("timeline_enrichment", "timeline-enrichment", "fn-timeline-enrichment"),
        ("audit_log", "audit-log", "fn-audit-log"),
        ("abcd", "abcd", "fn-abcd"),
        # 30 characters: the longest account id kept whole.
        (
            "twenty_seven_characters_xyz",
            "twenty-seven-characters-xyz",
            "fn-twenty-seven-characters-xyz",
        ),
        # Too long for an account id: a readable head and a hash of the whole name.
        ("a_very_long_consumer_name_for_tests", "a-very-long-consumer-name-for-tests", "hashed"),
    ],
)
def test_naming_examples(
    tmp_path: Path, consumer: str, function_name: str, account_id: str
) -> None:
    copy_naming_module(
        tmp_path,
        f"""
module "naming" {{
  source   = "./naming"
  consumer = {json.dumps(consumer)}
}}

output "function_name" {{
  value = module.naming.function_name
}}

output "account_id" {{
  value = module.naming.service_account_id
}}
""",
    )
    result = apply_offline(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    got = terraform_outputs(tmp_path)
    assert got["function_name"] == function_name
    if account_id == "hashed":
        assert re.fullmatch(r"fn-a-very-long-consum-[0-9a-f]{8}", got["account_id"]), got
    else:
        assert got["account_id"] == account_id
    assert SERVICE_ACCOUNT_ID.match(got["account_id"])


@pytest.mark.parametrize("consumer", ["ab", "abc", "audit_"])
def test_naming_refuses_names_cloud_functions_would_refuse(tmp_path: Path, consumer: str) -> None:
    copy_naming_module(
        tmp_path,
        f'module "naming" {{\n  source   = "./naming"\n  consumer = {json.dumps(consumer)}\n}}\n'
        'output "name" {\n  value = module.naming.function_name\n}\n',
    )
    result = apply_offline(tmp_path)
    assert result.returncode != 0
    assert "Rename the consumer" in one_line(result.stderr), result.stderr


def _root_variables(directory: Path, arguments: dict[str, str]) -> Path:
    """A scratch root whose only child is infra/variables.tf (variables need no provider)."""
    (directory / "vars").mkdir()
    shutil.copy(INFRA / "variables.tf", directory / "vars" / "variables.tf")
    lines = "".join(f"  {name} = {value}\n" for name, value in arguments.items())
    (directory / "main.tf").write_text(
        f'module "root" {{\n  source = "./vars"\n{lines}}}\n', encoding="utf-8"
    )
    return directory


REQUIRED_ROOT_ARGUMENTS = {"project_id": '"my-project-123"', "region": '"europe-west1"'}


def test_root_variables_accept_a_plain_deployment(tmp_path: Path) -> None:
    result = apply_offline(_root_variables(tmp_path, REQUIRED_ROOT_ARGUMENTS))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("argument", "value", "message"),
    [
        ("project_id", '"My Project"', "project_id must be a project id"),
        ("project_id", '"123456789012"', "project_id must be a project id"),
        ("region", '"europe-west1-b"', "region must be a region"),
        ("function_ingress_settings", '"PUBLIC"', "function_ingress_settings must be"),
        ("function_environment", '{ PORT = "9000" }', "function_environment keys"),
        ("topic_schemas", '{ post-liked = { type = "JSON", definition = "{}" } }', "type must be"),
        ("subscription_retention_duration", '"7d"', "subscription_retention_duration must be"),
        ("firestore_deletion_policy", '"DROP"', "firestore_deletion_policy must be"),
        ("push_invoker_account_id", '"inv"', "push_invoker_account_id must be"),
        ("build_account_id", '"Build"', "build_account_id must be"),
        ("function_ingress_settings", '"INTERNAL"', "function_ingress_settings must be"),
        ("labels", '{ Team = "x" }', "Label keys"),
        ("oldest_unacked_age_alert_seconds", "0", "oldest_unacked_age_alert_seconds must be"),
        ("oldest_unacked_age_alert_seconds", "-600", "oldest_unacked_age_alert_seconds must"),
        ("oldest_unacked_age_alert_seconds", "90.5", "oldest_unacked_age_alert_seconds must"),
        ("notification_channels", '["1234567890"]', "Each notification channel must look"),
        (
            "notification_channels",
            '["projects/p/notificationChannels/1/x"]',
            "Each notification channel must look",
        ),
    ],
)
def test_root_variables_refuse_wrong_values(
    tmp_path: Path, argument: str, value: str, message: str
) -> None:
    arguments = {**REQUIRED_ROOT_ARGUMENTS, argument: value}
    result = apply_offline(_root_variables(tmp_path, arguments))
    assert result.returncode != 0
    assert message in one_line(result.stderr), result.stderr


# infra/main.tf's module calls, fed from a topology.json, with the modules reduced to their
# variables.tf (validations need no provider).
MODULES_FED_FROM_TOPOLOGY_JSON = """
locals {
  topology = jsondecode(file("${path.module}/topology.json"))
}

module "topic" {
  source                     = "./pubsub_topic"
  for_each                   = local.topology.topics
  project_id                 = "p"
  name                       = each.key
  message_retention_duration = each.value.message_retention_duration
}

module "consumer" {
  source     = "./consumer"
  for_each   = local.topology.consumers
  project_id = "p"
  region     = "r"
  name       = each.key
  function = {
    entry_point     = each.value.entry_point
    runtime         = each.value.runtime
    memory          = each.value.memory
    timeout_seconds = each.value.timeout_seconds
    max_instances   = each.value.max_instances
    min_instances   = each.value.min_instances
    concurrency     = each.value.concurrency
    environment     = each.value.environment
    publishes_to    = each.value.publishes_to
    uses_store      = each.value.uses_store
  }
  subscriptions = {
    for name, s in local.topology.subscriptions : name => {
      topic                   = s.topic
      ack_deadline_seconds    = s.ack_deadline_seconds
      max_delivery_attempts   = s.max_delivery_attempts
      minimum_backoff         = s.minimum_backoff
      maximum_backoff         = s.maximum_backoff
      filter                  = s.filter
      enable_message_ordering = s.enable_message_ordering
      dead_letter_topic       = s.dead_letter_topic
    } if s.consumer == each.key
  }
  dead_letter_topics = {
    for name, d in local.topology.dead_letter_topics : name => {
      source_subscription = d.source_subscription
    } if d.consumer == each.key
  }
  topic_ids            = {}
  source_bucket        = "b"
  archive_path         = "x.zip"
  push_invoker_email   = "i@example.com"
  pubsub_service_agent = "a@example.com"
}
"""


def apply_module_validations(
    directory: Path, topology_json: str
) -> subprocess.CompletedProcess[str]:
    """Feed a topology.json to the modules' variable validations, as infra/main.tf does."""
    for module in ("consumer", "pubsub_topic"):
        (directory / module).mkdir()
        shutil.copy(INFRA / "modules" / module / "variables.tf", directory / module)
    (directory / "topology.json").write_text(topology_json, encoding="utf-8")
    (directory / "main.tf").write_text(MODULES_FED_FROM_TOPOLOGY_JSON, encoding="utf-8")
    return apply_offline(directory)


def test_topology_values_pass_the_module_validations(tmp_path: Path) -> None:
    """Every value topology.json feeds the modules is one their validations accept.

    The modules' variables.tf files run alone (they need no provider), fed as infra/main.tf
    feeds them.
    """
    result = apply_module_validations(tmp_path, TOPOLOGY_JSON.read_text(encoding="utf-8"))
    assert result.returncode == 0, result.stdout + result.stderr


# --- Python refuses at declaration what Terraform would refuse at plan (issue 8) ------------

NAMING_ROOT = """
variable "consumer" {
  type = string
}

module "naming" {
  source   = "./naming"
  consumer = var.consumer
}

output "function_name" {
  value = module.naming.function_name
}

output "account_id" {
  value = module.naming.service_account_id
}
"""

# Around every rule of the naming module: length (Cloud Functions ids are 4-63 characters),
# characters, the trailing character, the 30-character service account id and its shortening.
EDGE_CONSUMER_NAMES = [
    "",
    "a",
    "ab",
    "x_",
    "abc",
    "a_b",
    "a_1",
    "abcd",
    "a_bc",
    "a__b",
    "ab__",
    "abc_",
    "a_b_",
    "audit_",
    "audit_log",
    "audit__log",
    "audit_log_",
    "timeline_enrichment",
    "a1b2",
    "a123",
    "abc1",
    "1abc",
    "_abc",
    "Abcd",
    "abcD",
    "ab-cd",
    "ab.cd",
    "ab cd",
    "abcd\n",
    "\nabcd",
    "abcé",
    "goog",
    "google_sync",
    "a" * 27,  # "fn-" + 27: the longest service account id kept whole
    "a" * 28,  # shortened: 21 characters and a hash
    "abcdefghijklmnopq_rstuvwxyz_0",  # shortened right after a "-"
    "abcdefghijklmnop__qrstuvwxyz",  # shortened inside "--"
    "a_very_long_consumer_name_for_tests",
    *("a" * n for n in (59, 60, 61, 62, 63, 64)),
    "a" * 62 + "_",
    "a" * 62 + "1",
]


def _name_id(name: str) -> str:
    return repr(name) if len(name) <= 20 else f"{name[:6]}...{name[-3:]}({len(name)})"


@pytest.fixture(scope="module")
def naming_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The naming module behind a root variable, initialised once for many names."""
    directory = copy_naming_module(tmp_path_factory.mktemp("naming"), NAMING_ROOT)
    init = run_terraform("init", "-no-color", "-input=false", cwd=directory)
    assert init.returncode == 0, init.stdout + init.stderr
    return directory


def terraform_names(directory: Path, consumer: str) -> dict[str, Any] | None:
    """The names the naming module derives for ``consumer``, or ``None`` when it refuses it."""
    # A JSON var file passes any string as it is (empty, with a newline...).
    variables = directory / "consumer.tfvars.json"
    variables.write_text(json.dumps({"consumer": consumer}), encoding="utf-8")
    result = run_terraform(
        "apply",
        "-no-color",
        "-input=false",
        "-auto-approve",
        f"-var-file={variables.name}",
        cwd=directory,
    )
    if result.returncode == 0:
        return terraform_outputs(directory)
    refusal = re.compile(r"Invalid value for variable|precondition failed")
    assert refusal.search(one_line(result.stderr)), result.stdout + result.stderr
    return None


def python_consumer(name: str) -> Consumer | None:
    try:
        return Consumer(name, topics=["t"])
    except TopologyError:
        return None


@pytest.mark.parametrize("consumer", EDGE_CONSUMER_NAMES, ids=_name_id)
def test_python_accepts_exactly_the_consumer_names_the_naming_module_accepts(
    naming_root: Path, consumer: str
) -> None:
    terraform = terraform_names(naming_root, consumer)
    python = python_consumer(consumer)
    verdict = {True: "accepts", False: "refuses"}
    assert (python is None) == (terraform is None), (
        f"consumer name {consumer!r}: Python {verdict[python is not None]} it, the naming "
        f"module {verdict[terraform is not None]} it"
    )
    if python is not None and terraform is not None:
        assert python.function_name == terraform["function_name"]
        assert python.service_account_id == terraform["account_id"]


class InfraProbe(Event):
    """A fifth event type, for a fifth topic in the edge topology."""

    event_type: ClassVar[str] = "infra.probe.v1"


def edge_topology() -> Topology:
    """Every duration at the edges of its range, and the longest names Pub/Sub takes."""
    long_topic = "n" * (255 - len("----dlq") - 63)
    topics = [
        Topic("retention-min", events=[PostLiked], message_retention=600),
        Topic("retention-million", events=[UserUpdated], message_retention=1_000_000),
        Topic("retention-fortnight", events=[OrderDispatched], message_retention=14 * 24 * 3600),
        Topic("retention-max", events=[NotificationRequested], message_retention=2_678_400),
        Topic(long_topic, events=[InfraProbe], message_retention=None),
    ]
    backoffs: dict[str, tuple[float, float]] = {
        "zero": (0, 0),
        "full": (0, 600),
        "max": (600.0, 600.0),
        "half": (0.5, 1.5),
        "micro": (0.000001, 0.0001),
        "nanos": (0.000000001, 599.999999999),
        "sub_nano": (1e-10, 123.4567890123),
    }
    consumers = [
        Consumer(f"backoff_{name}", topics=["retention-min"], retry=RetryPolicy(low, high))
        for name, (low, high) in backoffs.items()
    ]
    consumers.append(Consumer("c" * 63, topics=[long_topic, "retention-max"]))
    consumers.append(
        Consumer("busiest", topics=["retention-min"], function=FunctionSettings(concurrency=1000))
    )
    return Topology(topics, consumers)


def test_edge_values_of_every_exported_setting_pass_the_module_validations(
    tmp_path: Path,
) -> None:
    export = edge_topology().to_terraform()
    assert max(len(name) for name in export["dead_letter_topics"]) == 255
    result = apply_module_validations(tmp_path, json.dumps(export, indent=2, sort_keys=True))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("concurrency", [0, 1, 2.5, 80, 1000, 1001])
def test_the_consumer_module_accepts_exactly_the_concurrency_python_accepts(
    tmp_path: Path, concurrency: float
) -> None:
    export = TOPOLOGY.to_terraform()
    next(iter(export["consumers"].values()))["concurrency"] = concurrency
    terraform = apply_module_validations(tmp_path, json.dumps(export))
    settings = FunctionSettings(concurrency=concurrency)  # type: ignore[arg-type]
    try:
        Consumer("cons", topics=["t"], function=settings)
    except TopologyError:
        python = False
    else:
        python = True
    assert (terraform.returncode == 0) == python, terraform.stdout + terraform.stderr
    if not python:
        assert "function.concurrency (requests one instance handles at once) must be" in (
            one_line(terraform.stderr)
        )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("message_retention_duration", "1.2096e+06s", "message_retention_duration must be"),
        ("minimum_backoff", "1e-06s", "Every minimum_backoff and maximum_backoff"),
    ],
)
def test_the_module_validations_refuse_exponent_durations(
    tmp_path: Path, field: str, value: str, message: str
) -> None:
    """What the export used to write (``:g``) fails at plan: the edge test above has teeth."""
    export = edge_topology().to_terraform()
    entries = export["topics"] if field.startswith("message") else export["subscriptions"]
    next(iter(entries.values()))[field] = value
    result = apply_module_validations(tmp_path, json.dumps(export))
    assert result.returncode != 0
    assert message in one_line(result.stderr), result.stderr
