"""Observability in ``infra/``: tracing and monitoring, each off unless asked for.

With ``enable_tracing`` and ``enable_monitoring`` off (the defaults) nothing of either exists: no
OpenTelemetry variable, no Cloud Trace role, no extra API, no log-based metric, no alert policy.
With tracing on, every function exports its spans to Cloud Trace and its account holds
``roles/cloudtrace.agent``, nothing more. With monitoring on, two log-based metrics read the one
line each function logs per message, and every dead-letter and push subscription has exactly one
alert policy that tells the on-call what to run.

What decides this is evaluated by Terraform itself, offline, as tests/test_infra.py does for the
naming module: ``modules/observability`` has no provider, so it is applied in a scratch directory
for every consumer of ``infra/topology.json``; the root's API list, metric switches and filters
are expressions over variables and locals only, evaluated the same way. The HCL is checked to
take every observability resource from those values, and tests/test_infra_schema.py checks the
resources against the provider's schema.
"""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from shared.observability import CloudLoggingFormatter
from shared.runtime import Outcome, Result
from shared.runtime.observe import Observe
from tests.runtime._support import Rest, encoded, inflight, like
from tests.test_infra import (
    CONSUMER_MAIN,
    INFRA,
    OPTIONAL_APIS,
    REQUIRED_APIS,
    REQUIRED_ROOT_ARGUMENTS,
    TOPOLOGY_JSON,
    Block,
    _root_variables,
    apply_offline,
    block_named,
    blocks,
    checked_in_topology,
    dynamic_blocks,
    edge_topology,
    labelled,
    one_line,
    parse,
    resources,
    run_terraform,
    terraform_outputs,
    text,
)

ROOT_MAIN = INFRA / "main.tf"
OBSERVABILITY = INFRA / "modules" / "observability"
PROJECT = "my-project-123"
REGION = "europe-west1"
LONGEST_FUNCTION_TIMEOUT_MS = 540 * 1000  # Cloud Functions (2nd gen) event-driven maximum

# Cloud Monitoring's limits on an alert policy (AlertPolicy, AlertPolicy.Documentation).
DISPLAY_NAME_CHARACTERS = 512
CONTENT_CHARACTERS = 8192
CONTENT_BYTES = 10240

# Cloud Logging's limit on a user-defined metric's name, and the characters it may use.
METRIC_NAME = re.compile(r"^[A-Za-z0-9_.,+!*',()%-][A-Za-z0-9_.,+!*',()%/-]{0,99}$")

# --- evaluating infra/ offline ---------------------------------------------------------------


def hcl(value: Any) -> str:
    """A value parsed by python-hcl2 (8.x) written back as an HCL expression."""
    if isinstance(value, str):
        # Strings and templates keep their quotes; an expression comes wrapped in "${...}".
        if not value.startswith('"') and value.startswith("${") and value.endswith("}"):
            return value[2:-1]
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(hcl(item) for item in value) + "]"
    if isinstance(value, dict):
        items = (f"{key} = {hcl(item)}" for key, item in value.items() if not key.startswith("__"))
        return "{ " + ", ".join(items) + " }"
    raise TypeError(f"cannot write {value!r} as HCL")


def locals_of(path: Path) -> dict[str, Any]:
    return {
        name: value
        for entry in parse(path).get("locals", [])
        for name, value in entry.items()
        if not name.startswith("__")
    }


def evaluate(
    directory: Path, source: Path, expressions: dict[str, str], variables: dict[str, Any]
) -> dict[str, Any]:
    """Each of ``expressions`` (HCL from ``source``) as Terraform evaluates it.

    The locals they read are copied from ``source``; every variable they read must be given.
    """
    available = locals_of(source)
    needed: dict[str, str] = {}
    pending = list(expressions.values())
    while pending:
        for name in re.findall(r"\blocal\.(\w+)", pending.pop()):
            if name not in needed:
                needed[name] = hcl(available[name])
                pending.append(needed[name])
    everything = " ".join([*expressions.values(), *needed.values()])
    names = sorted(set(re.findall(r"\bvar\.(\w+)", everything)))
    assert set(names) <= set(variables), f"give a value to {sorted(set(names) - set(variables))}"
    config = "".join(f'variable "{name}" {{\n  type = any\n}}\n' for name in names)
    config += "locals {\n" + "".join(f"  {k} = {v}\n" for k, v in needed.items()) + "}\n"
    config += "".join(f'output "{k}" {{\n  value = {v}\n}}\n' for k, v in expressions.items())
    (directory / "main.tf").write_text(config, encoding="utf-8")
    values = {name: variables[name] for name in names}
    (directory / "terraform.tfvars.json").write_text(json.dumps(values), encoding="utf-8")
    result = apply_offline(directory)
    assert result.returncode == 0, config + result.stdout + result.stderr
    return terraform_outputs(directory)


def root_resource(resource_type: str, name: str) -> Block:
    (body,) = [b for path, n, b in resources(resource_type) if path == ROOT_MAIN and n == name]
    return body


def consumer_resource(resource_type: str, name: str) -> Block:
    (body,) = [b for path, n, b in resources(resource_type) if path == CONSUMER_MAIN and n == name]
    return body


# modules/observability for every consumer of a topology.json, fed as infra/main.tf and the
# consumer module feed it (the consumer module passes its subscriptions and dead-letter topics,
# which infra/main.tf selects by consumer).
OBSERVABILITY_FED_FROM_TOPOLOGY_JSON = """
locals {
  topology = jsondecode(file("${path.module}/topology.json"))
}

variable "enable_tracing" {
  type = bool
}

variable "enable_monitoring" {
  type = bool
}

variable "oldest_unacked_age_alert_seconds" {
  type = number
}

module "observability" {
  source   = "./observability"
  for_each = local.topology.consumers

  project_id    = "my-project-123" # PROJECT
  region        = "europe-west1"   # REGION
  consumer      = each.key
  function_name = replace(each.key, "_", "-")
  subscriptions = {
    for n, s in local.topology.subscriptions : n => s if s.consumer == each.key
  }
  dead_letter_topics = {
    for n, d in local.topology.dead_letter_topics : n => d if d.consumer == each.key
  }

  enable_tracing                   = var.enable_tracing
  enable_monitoring                = var.enable_monitoring
  oldest_unacked_age_alert_seconds = var.oldest_unacked_age_alert_seconds
}

output "consumers" {
  value = module.observability
}
"""


@pytest.fixture(scope="module")
def observability_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """modules/observability behind a scratch root, initialised once for many settings."""
    directory = tmp_path_factory.mktemp("observability")
    shutil.copytree(OBSERVABILITY, directory / "observability")
    (directory / "main.tf").write_text(OBSERVABILITY_FED_FROM_TOPOLOGY_JSON, encoding="utf-8")
    init = run_terraform("init", "-no-color", "-input=false", cwd=directory)
    assert init.returncode == 0, init.stdout + init.stderr
    return directory


def derive(
    directory: Path,
    *,
    tracing: bool,
    monitoring: bool,
    threshold: float = 600,
    topology: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What modules/observability derives for each consumer of ``topology``, by consumer."""
    exported = topology if topology is not None else checked_in_topology()
    (directory / "topology.json").write_text(json.dumps(exported), encoding="utf-8")
    settings = directory / "settings.tfvars.json"
    settings.write_text(
        json.dumps(
            {
                "enable_tracing": tracing,
                "enable_monitoring": monitoring,
                "oldest_unacked_age_alert_seconds": threshold,
            }
        ),
        encoding="utf-8",
    )
    result = run_terraform(
        "apply",
        "-no-color",
        "-input=false",
        "-auto-approve",
        f"-var-file={settings.name}",
        cwd=directory,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    consumers: dict[str, Any] = terraform_outputs(directory)["consumers"]
    assert sorted(consumers) == sorted(exported["consumers"])
    return consumers


def owned_by(consumer: str, kind: str) -> set[str]:
    """Names of the ``kind`` ("subscriptions", "dead_letter_topics") of ``consumer``."""
    entries = checked_in_topology()[kind]
    return {name for name, entry in entries.items() if entry["consumer"] == consumer}


# --- off by default --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name"),
    [
        (INFRA / "variables.tf", "enable_tracing"),
        (INFRA / "variables.tf", "enable_monitoring"),
        (INFRA / "modules/consumer/variables.tf", "enable_tracing"),
        (INFRA / "modules/consumer/variables.tf", "enable_monitoring"),
        (OBSERVABILITY / "variables.tf", "enable_tracing"),
        (OBSERVABILITY / "variables.tf", "enable_monitoring"),
    ],
    ids=lambda v: v if isinstance(v, str) else v.parent.name,
)
def test_tracing_and_monitoring_are_off_by_default(path: Path, name: str) -> None:
    variable = block_named("variable", name, path)
    assert text(variable["type"]) == "bool"
    assert variable["default"] is False


def test_with_both_off_no_consumer_gets_anything(observability_root: Path) -> None:
    for name, derived in derive(observability_root, tracing=False, monitoring=False).items():
        assert derived["environment"] == {}, name
        assert derived["project_roles"] == [], name
        assert derived["dead_letter_alerts"] == {}, name
        assert derived["backlog_alerts"] == {}, name


def test_with_both_off_no_api_and_no_log_based_metric_is_added(tmp_path: Path) -> None:
    values = evaluate(
        tmp_path,
        ROOT_MAIN,
        {
            "apis": "local.apis",
            "messages": hcl(root_resource("google_logging_metric", "messages")["for_each"]),
            "duration": hcl(root_resource("google_logging_metric", "handler_duration")["for_each"]),
        },
        {"enable_apis": True, "enable_tracing": False, "enable_monitoring": False},
    )
    assert set(values["apis"]) == REQUIRED_APIS
    assert values["messages"] == values["duration"] == []


# --- tracing ---------------------------------------------------------------------------------


def test_tracing_sets_the_opentelemetry_environment_of_every_function(
    observability_root: Path,
) -> None:
    for name, derived in derive(observability_root, tracing=True, monitoring=False).items():
        assert derived["environment"] == {
            "OTEL_TRACES_EXPORTER": "gcp_trace",  # opentelemetry-exporter-gcp-trace
            "OTEL_SERVICE_NAME": name,  # the consumer, as in its log lines and metric labels
            "OTEL_METRICS_EXPORTER": "none",  # metrics come from the logs
        }
        assert derived["dead_letter_alerts"] == derived["backlog_alerts"] == {}, name


def test_tracing_grants_cloudtrace_agent_and_nothing_else(observability_root: Path) -> None:
    for name, derived in derive(observability_root, tracing=True, monitoring=True).items():
        assert derived["project_roles"] == ["roles/cloudtrace.agent"], name
    for name, derived in derive(observability_root, tracing=False, monitoring=True).items():
        assert derived["project_roles"] == [], f"{name}: a trace role without tracing"


def test_the_function_gets_the_tracing_environment_and_role_from_the_module() -> None:
    function = consumer_resource("google_cloudfunctions2_function", "this")
    (service,) = blocks(function, "service_config")
    assert text(service["environment_variables"]).endswith(", local.managed_environment)")
    managed = hcl(locals_of(CONSUMER_MAIN)["managed_environment"])
    # Managed, so merged last: a topology or function_environment value cannot point the
    # exporter elsewhere than where the account may write.
    assert managed.endswith(", module.observability.environment)"), managed
    grant = consumer_resource("google_project_iam_member", "tracing")
    assert text(grant["for_each"]) == "module.observability.project_roles"
    assert text(grant["member"]) == "google_service_account.function.member"
    assert not blocks(grant, "condition"), "Cloud Trace grants on the project, unconditioned"
    assert "google_project_iam_member.tracing" in [text(d) for d in function["depends_on"]]


@pytest.mark.parametrize(
    ("enable_apis", "tracing", "monitoring", "added"),
    [
        (True, True, False, {"cloudtrace.googleapis.com"}),
        (True, False, True, {"monitoring.googleapis.com"}),
        (True, True, True, {"cloudtrace.googleapis.com", "monitoring.googleapis.com"}),
        (False, True, True, None),
    ],
)
def test_each_toggle_enables_its_own_api_with_the_others(
    tmp_path: Path, enable_apis: bool, tracing: bool, monitoring: bool, added: set[str] | None
) -> None:
    variables = {
        "enable_apis": enable_apis,
        "enable_tracing": tracing,
        "enable_monitoring": monitoring,
    }
    apis = set(evaluate(tmp_path, ROOT_MAIN, {"apis": "local.apis"}, variables)["apis"])
    assert apis == (set() if added is None else REQUIRED_APIS | added)
    assert set(OPTIONAL_APIS) == {"cloudtrace.googleapis.com", "monitoring.googleapis.com"}


# --- log-based metrics -----------------------------------------------------------------------


def test_the_log_based_metrics_exist_only_with_monitoring(tmp_path: Path) -> None:
    expressions = {
        name: hcl(root_resource("google_logging_metric", name)["for_each"])
        for name in ("messages", "handler_duration")
    }
    (tmp_path / "on").mkdir()
    (tmp_path / "off").mkdir()
    on = evaluate(tmp_path / "on", ROOT_MAIN, expressions, {"enable_monitoring": True})
    assert on == {
        "messages": ["pubsub_kit/messages"],
        "handler_duration": ["pubsub_kit/handler_duration"],
    }
    for (name,) in on.values():
        assert METRIC_NAME.match(name), f"{name}: not a valid log-based metric name"
    off = evaluate(tmp_path / "off", ROOT_MAIN, expressions, {"enable_monitoring": False})
    assert off == {"messages": [], "handler_duration": []}
    for body in (root_resource("google_logging_metric", n) for n in expressions):
        assert text(body["name"]) == "each.key"


@pytest.fixture(scope="module")
def metrics(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Filters and extractors of both metrics, as Terraform evaluates them."""
    expressions: dict[str, str] = {}
    for name in ("messages", "handler_duration"):
        body = root_resource("google_logging_metric", name)
        expressions[f"{name}_filter"] = hcl(body["filter"])
        expressions[f"{name}_labels"] = hcl(body["label_extractors"])
        (descriptor,) = blocks(body, "metric_descriptor")
        labels = dynamic_blocks(descriptor)["labels"]
        expressions[f"{name}_descriptor_labels"] = hcl(labels["for_each"])
        if "value_extractor" in body:
            expressions[f"{name}_value"] = hcl(body["value_extractor"])
    directory = tmp_path_factory.mktemp("metrics")
    values = evaluate(directory, ROOT_MAIN, expressions, {})
    return {key: values[key] for key in expressions}


def test_the_message_counter_counts_each_per_message_line_by_consumer_and_status(
    metrics: dict[str, Any],
) -> None:
    assert metrics["messages_filter"] == (
        'jsonPayload.logger="pubsub_kit.consumer" AND jsonPayload.status:*'
    )
    assert metrics["messages_labels"] == {
        "consumer": "EXTRACT(jsonPayload.consumer)",
        "status": "EXTRACT(jsonPayload.status)",
    }
    body = root_resource("google_logging_metric", "messages")
    (descriptor,) = blocks(body, "metric_descriptor")
    assert (text(descriptor["metric_kind"]), text(descriptor["value_type"])) == ("DELTA", "INT64")
    assert "value_extractor" not in body, "a counter counts lines"


def test_the_duration_distribution_reads_duration_ms_by_consumer_and_status(
    metrics: dict[str, Any],
) -> None:
    assert metrics["handler_duration_filter"] == (
        f"{metrics['messages_filter']} AND jsonPayload.duration_ms:*"
    )
    assert metrics["handler_duration_value"] == "EXTRACT(jsonPayload.duration_ms)"
    assert metrics["handler_duration_labels"] == metrics["messages_labels"]
    body = root_resource("google_logging_metric", "handler_duration")
    (descriptor,) = blocks(body, "metric_descriptor")
    assert (text(descriptor["value_type"]), text(descriptor["unit"])) == ("DISTRIBUTION", "ms")


def test_every_extracted_label_is_declared_in_the_metric_descriptor(
    metrics: dict[str, Any],
) -> None:
    for name in ("messages", "handler_duration"):
        declared = metrics[f"{name}_descriptor_labels"]
        assert set(declared) == set(metrics[f"{name}_labels"]), name
        (descriptor,) = blocks(root_resource("google_logging_metric", name), "metric_descriptor")
        (content,) = blocks(dynamic_blocks(descriptor)["labels"], "content")
        assert text(content["key"]) == "labels.key"
        assert text(content["value_type"]) == "STRING"


def test_duration_buckets_reach_past_the_longest_function_timeout() -> None:
    (options,) = blocks(
        root_resource("google_logging_metric", "handler_duration"), "bucket_options"
    )
    (buckets,) = blocks(options, "exponential_buckets")
    scale, growth, finite = (
        buckets["scale"],
        buckets["growth_factor"],
        buckets["num_finite_buckets"],
    )
    assert scale <= 1, "the first bucket must start at 1 ms or less"
    assert scale * growth**finite >= LONGEST_FUNCTION_TIMEOUT_MS
    assert scale * growth ** (finite - 1) < LONGEST_FUNCTION_TIMEOUT_MS, "no bucket wasted"


def per_message_line(consumer: str, outcome: Outcome) -> dict[str, Any]:
    """The line the runtime logs for one message, as Cloud Logging stores it in jsonPayload."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(CloudLoggingFormatter())
    logger = logging.getLogger("pubsub_kit.consumer")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        Observe()(inflight(encoded(like()), consumer), Rest(Result(outcome, "why")))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    lines: list[dict[str, Any]] = [json.loads(line) for line in stream.getvalue().splitlines()]
    (line,) = [line for line in lines if "status" in line]
    return line


def matches(log_filter: str, payload: dict[str, Any]) -> bool:
    """Whether a jsonPayload matches a filter of ``jsonPayload.F="V"`` and ``:*`` terms."""
    for term in log_filter.split(" AND "):
        equals = re.fullmatch(r'jsonPayload\.(\w+)="([^"]*)"', term)
        present = re.fullmatch(r"jsonPayload\.(\w+):\*", term)
        if equals:
            if payload.get(equals.group(1)) != equals.group(2):
                return False
        elif present:
            if present.group(1) not in payload:
                return False
        else:
            raise AssertionError(f"this test reads only '=' and ':*' terms, not {term!r}")
    return True


def extract(extractor: str, payload: dict[str, Any]) -> Any:
    found = re.fullmatch(r"EXTRACT\(jsonPayload\.(\w+)\)", extractor)
    assert found, extractor
    return payload[found.group(1)]


@pytest.mark.parametrize("outcome", list(Outcome), ids=lambda o: o.value)
def test_the_metrics_read_what_the_runtime_logs(metrics: dict[str, Any], outcome: Outcome) -> None:
    """Every status the runtime can log is counted, labelled and timed by the metrics."""
    line = per_message_line("timeline_enrichment", outcome)
    for name in ("messages", "handler_duration"):
        assert matches(metrics[f"{name}_filter"], line), f"{name} misses {line}"
        labels = {key: extract(e, line) for key, e in metrics[f"{name}_labels"].items()}
        assert labels == {"consumer": "timeline_enrichment", "status": outcome.value}
    duration = extract(metrics["handler_duration_value"], line)
    assert isinstance(duration, int | float) and duration >= 0


def test_the_metrics_ignore_the_consumer_loggers_other_lines(metrics: dict[str, Any]) -> None:
    # The slow-handling warning carries a duration but is not a message: it must not count twice.
    warning = {"logger": "pubsub_kit.consumer", "consumer": "c", "duration_ms": 61000.0}
    for name in ("messages", "handler_duration"):
        assert not matches(metrics[f"{name}_filter"], warning), name
        assert not matches(metrics[f"{name}_filter"], {**warning, "logger": "other", "status": "x"})


def test_the_status_label_documents_every_status_the_runtime_logs() -> None:
    described = text(locals_of(ROOT_MAIN)["message_metric_labels"]["status"])
    assert set(re.findall(r"[a-z_]+", described)) >= {o.value for o in Outcome}


# --- alert policies --------------------------------------------------------------------------


def test_monitoring_gives_one_alert_per_dead_letter_and_per_push_subscription(
    observability_root: Path,
) -> None:
    derived = derive(observability_root, tracing=False, monitoring=True)
    dead_letter_alerts: list[str] = []
    backlog_alerts: list[str] = []
    for name, consumer in derived.items():
        assert set(consumer["dead_letter_alerts"]) == owned_by(name, "dead_letter_topics"), name
        assert set(consumer["backlog_alerts"]) == owned_by(name, "subscriptions"), name
        assert consumer["environment"] == {}, f"{name}: monitoring must not turn on tracing"
        dead_letter_alerts += consumer["dead_letter_alerts"]
        backlog_alerts += consumer["backlog_alerts"]
    topology = checked_in_topology()
    assert sorted(dead_letter_alerts) == sorted(topology["dead_letter_topics"])
    assert sorted(backlog_alerts) == sorted(topology["subscriptions"])


def test_each_alert_watches_its_own_subscription(observability_root: Path) -> None:
    for consumer in derive(observability_root, tracing=False, monitoring=True).values():
        for metric, alerts, threshold in (
            ("num_undelivered_messages", consumer["dead_letter_alerts"], 0),
            ("oldest_unacked_message_age", consumer["backlog_alerts"], 600),
        ):
            for subscription, alert in alerts.items():
                assert alert["filter"] == (
                    'resource.type = "pubsub_subscription" AND '
                    f'resource.label.project_id = "{PROJECT}" AND '
                    f'resource.label.subscription_id = "{subscription}" AND '
                    f'metric.type = "pubsub.googleapis.com/subscription/{metric}"'
                )
                assert alert["threshold"] == threshold, subscription
                assert subscription in alert["display_name"]


def test_the_backlog_threshold_is_the_variable(observability_root: Path) -> None:
    derived = derive(observability_root, tracing=False, monitoring=True, threshold=120)
    for consumer in derived.values():
        for alert in consumer["backlog_alerts"].values():
            assert alert["threshold"] == 120
            assert "120 s" in alert["display_name"] and "120 s" in alert["content"]
        for alert in consumer["dead_letter_alerts"].values():
            assert alert["threshold"] == 0


@pytest.mark.parametrize("threshold", [0, -1, 1.5])
def test_the_backlog_threshold_must_be_a_positive_whole_number(
    observability_root: Path, threshold: float
) -> None:
    settings = observability_root / "bad.tfvars.json"
    settings.write_text(
        json.dumps(
            {
                "enable_tracing": False,
                "enable_monitoring": True,
                "oldest_unacked_age_alert_seconds": threshold,
            }
        ),
        encoding="utf-8",
    )
    (observability_root / "topology.json").write_text(
        TOPOLOGY_JSON.read_text(encoding="utf-8"), encoding="utf-8"
    )
    result = run_terraform(
        "plan", "-no-color", "-input=false", f"-var-file={settings.name}", cwd=observability_root
    )
    assert result.returncode != 0
    assert "oldest_unacked_age_alert_seconds must be a whole number" in one_line(result.stderr)


def test_each_alert_tells_the_on_call_what_to_run(observability_root: Path) -> None:
    topology = checked_in_topology()
    for name, consumer in derive(observability_root, tracing=False, monitoring=True).items():
        for dead_letters, alert in consumer["dead_letter_alerts"].items():
            source = topology["dead_letter_topics"][dead_letters]["source_subscription"]
            content = alert["content"]
            assert f"pubsub-kit dlq inspect {source} --project {PROJECT}" in content
            assert f"pubsub-kit dlq replay {source} --project {PROJECT}" in content
            assert f"`{topology['subscriptions'][source]['topic']}`" in content, "replayed where"
        for subscription, alert in consumer["backlog_alerts"].items():
            content = alert["content"]
            function = name.replace("_", "-")
            assert f"gcloud functions logs read {function} --gen2 --region {REGION}" in content
            assert f'jsonPayload.consumer="{name}"' in content
            dead_letter_topic = topology["subscriptions"][subscription]["dead_letter_topic"]
            assert f"`{dead_letter_topic}`" in content, "where a failing message will go"


def test_alert_texts_fit_cloud_monitorings_limits_for_the_longest_names(
    observability_root: Path,
) -> None:
    export = edge_topology().to_terraform()
    derived = derive(observability_root, tracing=True, monitoring=True, topology=export)
    alerts = [
        alert
        for consumer in derived.values()
        for kind in ("dead_letter_alerts", "backlog_alerts")
        for alert in consumer[kind].values()
    ]
    assert len(alerts) == len(export["subscriptions"]) + len(export["dead_letter_topics"])
    longest = max(export["dead_letter_topics"], key=len)
    assert len(longest) == 255, "Pub/Sub's longest name"
    assert any(longest in alert["display_name"] for alert in alerts)
    for alert in alerts:
        assert len(alert["display_name"]) <= DISPLAY_NAME_CHARACTERS, alert["display_name"]
        assert len(alert["condition"]) <= DISPLAY_NAME_CHARACTERS, alert["condition"]
        assert len(alert["content"]) <= CONTENT_CHARACTERS
        assert len(alert["content"].encode("utf-8")) <= CONTENT_BYTES
        assert "${" not in alert["content"], "Cloud Monitoring would read it as its own variable"
    # The consumer name is a user label: at most 63 characters.
    assert max(len(name) for name in derived) <= 63


@pytest.mark.parametrize(
    ("name", "severity", "alerts"),
    [
        ("dead_letter", "ERROR", "module.observability.dead_letter_alerts"),
        ("backlog", "WARNING", "module.observability.backlog_alerts"),
    ],
)
def test_alert_policies_come_from_the_module_and_notify_the_channels(
    name: str, severity: str, alerts: str
) -> None:
    policy = consumer_resource("google_monitoring_alert_policy", name)
    assert text(policy["for_each"]) == alerts
    assert text(policy["notification_channels"]) == "var.notification_channels"
    assert text(policy["severity"]) == severity
    assert text(policy["combiner"]) == "OR"
    assert text(policy["display_name"]) == "each.value.display_name"
    (condition,) = blocks(policy, "conditions")
    assert text(condition["display_name"]) == "each.value.condition"
    (threshold,) = blocks(condition, "condition_threshold")
    assert text(threshold["filter"]) == "each.value.filter"
    assert text(threshold["threshold_value"]) == "each.value.threshold"
    assert text(threshold["comparison"]) == "COMPARISON_GT"
    (aggregation,) = blocks(threshold, "aggregations")
    assert text(aggregation["per_series_aligner"]) == "ALIGN_MAX"
    (documentation,) = blocks(policy, "documentation")
    assert text(documentation["mime_type"]) == "text/markdown"
    assert text(documentation["content"]) == "each.value.content"
    assert text(policy["user_labels"]) == "local.alert_labels"


def test_alert_policies_carry_the_deployments_labels_and_their_consumer(tmp_path: Path) -> None:
    """The provider's default_labels do not reach user_labels, so the module sets them."""
    values = evaluate(
        tmp_path,
        CONSUMER_MAIN,
        {"labels": "local.alert_labels"},
        {"labels": {"team": "payments", "consumer": "spoofed"}, "name": "audit_log"},
    )
    assert values["labels"] == {"app": "pubsub-kit", "team": "payments", "consumer": "audit_log"}


def test_no_alert_policy_or_metric_exists_outside_the_toggles() -> None:
    policies = {(path, name) for path, name, _ in resources("google_monitoring_alert_policy")}
    assert policies == {(CONSUMER_MAIN, "dead_letter"), (CONSUMER_MAIN, "backlog")}
    metrics = {(path, name) for path, name, _ in resources("google_logging_metric")}
    assert metrics == {(ROOT_MAIN, "messages"), (ROOT_MAIN, "handler_duration")}


def test_the_root_passes_its_settings_to_every_consumer() -> None:
    consumer = block_named("module", "consumer", ROOT_MAIN)
    for setting in (
        "enable_tracing",
        "enable_monitoring",
        "notification_channels",
        "oldest_unacked_age_alert_seconds",
        "labels",
    ):
        assert text(consumer[setting]) == f"var.{setting}", setting
    observability = block_named("module", "observability", CONSUMER_MAIN)
    for setting in (
        "enable_tracing",
        "enable_monitoring",
        "oldest_unacked_age_alert_seconds",
        "subscriptions",
        "dead_letter_topics",
    ):
        assert text(observability[setting]) == f"var.{setting}", setting
    assert text(observability["consumer"]) == "var.name"


def test_the_outputs_list_the_metrics_and_the_alert_policies() -> None:
    root = {labels[0] for _, labels, _ in labelled("output", [INFRA / "outputs.tf"])}
    assert {"log_metric_types", "alert_policy_ids"} <= root
    consumer = {
        labels[0] for _, labels, _ in labelled("output", [CONSUMER_MAIN.parent / "outputs.tf"])
    }
    assert "alert_policy_ids" in consumer


# --- the root's variables --------------------------------------------------------------------


def test_root_variables_accept_an_observed_deployment(tmp_path: Path) -> None:
    arguments = {
        **REQUIRED_ROOT_ARGUMENTS,
        "enable_tracing": "true",
        "enable_monitoring": "true",
        "notification_channels": f'["projects/{PROJECT}/notificationChannels/1234567890"]',
        "oldest_unacked_age_alert_seconds": "300",
    }
    result = apply_offline(_root_variables(tmp_path, arguments))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("monitoring", "channels", "holds"),
    [
        (False, [], True),
        (True, [], True),
        (True, ["projects/p/notificationChannels/1"], True),
        (False, ["projects/p/notificationChannels/1"], False),
    ],
)
def test_channels_without_monitoring_are_warned_about_at_plan(
    tmp_path: Path, monitoring: bool, channels: list[str], holds: bool
) -> None:
    (check,) = [
        body
        for entry in parse(ROOT_MAIN)["check"]
        for key, body in entry.items()
        if key.strip('"') == "notification_channels_need_monitoring"
    ]
    (assertion,) = blocks(check, "assert")
    variables = {"enable_monitoring": monitoring, "notification_channels": channels}
    value = evaluate(tmp_path, ROOT_MAIN, {"holds": hcl(assertion["condition"])}, variables)
    assert value["holds"] is holds
