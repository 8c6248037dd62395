"""``infra/`` against the google provider's own schema, at both ends of the supported range.

``terraform init`` cannot download the provider here, so ``terraform validate`` cannot run. The
provider's schema comes instead from its prebuilt CDK bindings on PyPI, extracted once by
``tests/infra/extract_schema.py`` into the small JSON files under ``tests/infra/schema/``
(checked in; the wheels are not). ``tests/infra/schema_check.py`` does the checking; the tests
below also break copies of ``infra/`` to show that each kind of mistake is caught.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.infra.schema_check import SCHEMA_DIR, Schema, check, load_schemas, parse, unquote

REPO = Path(__file__).resolve().parents[1]
INFRA = REPO / "infra"
SCHEMAS = load_schemas()
VERSIONS = sorted(SCHEMAS, key=lambda v: tuple(int(p) for p in v.split(".")))
OLDEST, NEWEST = SCHEMAS[VERSIONS[0]], SCHEMAS[VERSIONS[-1]]
PUSH_SUBSCRIPTION = INFRA / "modules" / "consumer" / "main.tf"


def major(version: str) -> int:
    return int(version.split(".")[0])


def declared_range(provider: str) -> tuple[int, int]:
    """(lowest major, first excluded major) of ``provider`` in infra/versions.tf."""
    (settings,) = parse(INFRA / "versions.tf")["terraform"]
    (providers,) = settings["required_providers"]
    constraint = unquote(providers[provider]["version"])
    lower = re.search(r">=\s*(\d+)", constraint)
    upper = re.search(r"<\s*(\d+)", constraint)
    assert lower and upper, f"{provider}: {constraint!r} needs '>=' and '<' bounds"
    return int(lower.group(1)), int(upper.group(1))


def broken_copy(tmp_path: Path, path: Path, old: str, new: str) -> Path:
    """A copy of infra/ in which ``old`` (present exactly once in ``path``) becomes ``new``."""
    copy = tmp_path / "infra"
    shutil.copytree(INFRA, copy, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    target = copy / path.relative_to(INFRA)
    source = target.read_text(encoding="utf-8")
    assert source.count(old) == 1, f"{old!r} is not in {path.name} exactly once"
    target.write_text(source.replace(old, new), encoding="utf-8")
    return copy


# --- the schemas ---------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["google", "google-beta"])
def test_schemas_cover_both_ends_of_the_supported_range(provider: str) -> None:
    lowest, excluded = declared_range(provider)
    versions = [v for v in VERSIONS if provider in SCHEMAS[v].providers]
    assert versions, f"no schema of {provider}"
    assert major(versions[0]) == lowest, f"{provider}: oldest schema {versions[0]}"
    assert major(versions[-1]) == excluded - 1, f"{provider}: newest schema {versions[-1]}"


def test_schema_files_stay_small_and_say_where_they_come_from() -> None:
    files = sorted(SCHEMA_DIR.glob("*.json"))
    assert sum(f.stat().st_size for f in files) < 1_000_000
    for schema in SCHEMAS.values():
        for document in schema.providers.values():
            assert document["binding"].count("==") == 1, document["binding"]
            assert document["resources"], document["binding"]


def test_the_pubsub_service_identity_exists_only_in_the_beta_provider() -> None:
    """Why infra/ needs google-beta: the GA provider has no google_project_service_identity."""
    for schema in (OLDEST, NEWEST):
        ga, beta = (schema.providers[p]["resource_types"] for p in ("google", "google-beta"))
        assert "google_project_service_identity" not in ga, schema.version
        assert "google_project_service_identity" in beta, schema.version


@pytest.mark.parametrize("version", VERSIONS)
def test_the_observability_resources_are_in_the_extracted_schemas(version: str) -> None:
    """Metrics and alert policies exist only with enable_monitoring; their schema is still here."""
    extracted = SCHEMAS[version].providers["google"]["resources"]
    assert {"google_logging_metric", "google_monitoring_alert_policy"} <= set(extracted)


# --- infra/ as it is -----------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_infra_matches_the_provider_schema(version: str) -> None:
    errors = check(INFRA, SCHEMAS[version])
    assert not errors, "\n".join(errors)


# --- each kind of mistake is caught --------------------------------------------------------


def assert_caught(copy: Path, schema: Schema, expected: str) -> None:
    errors = check(copy, schema)
    assert any(expected in e for e in errors), "\n".join(errors) or "no error reported"


@pytest.mark.parametrize("version", VERSIONS)
def test_a_misspelt_argument_is_caught(tmp_path: Path, version: str) -> None:
    copy = broken_copy(
        tmp_path,
        PUSH_SUBSCRIPTION,
        "  ack_deadline_seconds    = each.value.ack_deadline_seconds",
        "  ack_deadline_second     = each.value.ack_deadline_seconds",
    )
    assert_caught(
        copy,
        SCHEMAS[version],
        "unsupported argument or block 'ack_deadline_second' "
        "(did you mean 'ack_deadline_seconds'?)",
    )


def test_a_misspelt_argument_in_a_nested_block_is_caught(tmp_path: Path) -> None:
    copy = broken_copy(
        tmp_path,
        PUSH_SUBSCRIPTION,
        "      audience              = google_cloudfunctions2_function",
        "      audiences             = google_cloudfunctions2_function",
    )
    assert_caught(copy, NEWEST, "push_config.oidc_token: unsupported argument or block 'audiences'")


@pytest.mark.parametrize("version", VERSIONS)
def test_a_misspelt_argument_deep_in_an_alert_policy_is_caught(
    tmp_path: Path, version: str
) -> None:
    copy = broken_copy(
        tmp_path,
        PUSH_SUBSCRIPTION,
        'duration        = "0s" # one message waiting is enough',
        'durations       = "0s" # one message waiting is enough',
    )
    assert_caught(
        copy,
        SCHEMAS[version],
        "google_monitoring_alert_policy.dead_letter.conditions.condition_threshold: "
        "unsupported argument or block 'durations'",
    )


def test_a_missing_required_argument_is_caught(tmp_path: Path) -> None:
    copy = broken_copy(
        tmp_path,
        PUSH_SUBSCRIPTION,
        "    push_endpoint = google_cloudfunctions2_function.this.service_config[0].uri\n",
        "",
    )
    assert_caught(copy, OLDEST, "push_config: required argument 'push_endpoint' is missing")


def test_a_block_written_as_an_attribute_is_caught(tmp_path: Path) -> None:
    copy = broken_copy(
        tmp_path, INFRA / "main.tf", "  versioning {\n    enabled = true\n  }", "  versioning = {}"
    )
    assert_caught(copy, OLDEST, "versioning is a block; write `versioning { ... }`")


def test_an_argument_written_as_a_block_is_caught(tmp_path: Path) -> None:
    copy = broken_copy(
        tmp_path, INFRA / "main.tf", "  uniform_bucket_level_access = true", "  labels {}"
    )
    assert_caught(copy, NEWEST, "labels is an argument; write `labels = ...`")


def test_a_misspelt_dynamic_block_is_caught(tmp_path: Path) -> None:
    copy = broken_copy(tmp_path, PUSH_SUBSCRIPTION, 'dynamic "retry_policy"', 'dynamic "retry"')
    assert_caught(copy, NEWEST, "dynamic 'retry' is not a block of this type")


def test_an_unknown_resource_type_is_caught(tmp_path: Path) -> None:
    copy = broken_copy(
        tmp_path,
        PUSH_SUBSCRIPTION,
        'resource "google_cloud_run_v2_service_iam_member" "push_invoker"',
        'resource "google_cloud_run_v3_service_iam_member" "push_invoker"',
    )
    assert_caught(copy, OLDEST, "has no resource type 'google_cloud_run_v3_service_iam_member'")


def test_a_beta_only_resource_on_the_ga_provider_is_caught(tmp_path: Path) -> None:
    copy = broken_copy(tmp_path, INFRA / "main.tf", "  provider = google-beta\n", "")
    assert_caught(copy, NEWEST, "has no resource type 'google_project_service_identity'")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "service_account_email = var.push_invoker_email",
            "service_account_email = var.push_invoker_mail",
            "var.push_invoker_mail is not declared",
        ),
        ("local.archive_hash != null", "local.archive_sha != null", "local.archive_sha is not"),
        ("module.naming.function_name", "module.naming.function_id", "no output 'function_id'"),
        ("service_config[0].uri\n    }", "service_config[0].url\n    }", "'service_config.url'"),
        (
            "google_pubsub_topic.dead_letter[dead_letter_policy",
            "google_pubsub_topic.dead_letters[dead_letter_policy",
            "google_pubsub_topic.dead_letters is not declared",
        ),
    ],
)
def test_an_unresolved_reference_is_caught(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert_caught(broken_copy(tmp_path, PUSH_SUBSCRIPTION, old, new), OLDEST, expected)


def test_module_calls_are_checked_against_the_module_variables(tmp_path: Path) -> None:
    copy = broken_copy(
        tmp_path, INFRA / "main.tf", "  source_bucket           =", "  source_buckets          ="
    )
    errors = check(copy, OLDEST)
    assert any("has no variable 'source_buckets'" in e for e in errors), errors
    assert any("required variable 'source_bucket' is not passed" in e for e in errors), errors
