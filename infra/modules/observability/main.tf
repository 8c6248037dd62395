# What observability adds to one consumer, derived here without a provider so that it can be
# evaluated offline: the OpenTelemetry environment and the Cloud Trace role when tracing is on,
# and the conditions and on-call texts of its alert policies when monitoring is on. The consumer
# module creates the resources from these outputs; nothing is derived when both are off.

locals {
  # Read by the runtime's telemetry (shared/telemetry): "gcp_trace" is the exporter that
  # opentelemetry-exporter-gcp-trace registers. Metrics come from the log lines instead
  # (log-based metrics in the root module), so no OpenTelemetry metric exporter runs.
  environment = var.enable_tracing ? {
    OTEL_TRACES_EXPORTER  = "gcp_trace"
    OTEL_SERVICE_NAME     = var.consumer
    OTEL_METRICS_EXPORTER = "none"
  } : {}

  # Writing spans to Cloud Trace takes cloudtrace.traces.patch, granted on the project only
  # (Cloud Trace has no finer resource); roles/cloudtrace.agent holds that and nothing else.
  project_roles = var.enable_tracing ? toset(["roles/cloudtrace.agent"]) : toset([])

  # One alert per dead-letter pull subscription (same name as its topic): any message waiting.
  dead_letter_alerts = var.enable_monitoring ? {
    for name, d in var.dead_letter_topics : name => {
      display_name = "pubsub-kit ${var.consumer}: dead letters waiting in ${name}"
      condition    = "Undelivered messages in ${name} > 0"
      threshold    = 0
      filter = join(" AND ", [
        "resource.type = \"pubsub_subscription\"",
        "resource.label.project_id = \"${var.project_id}\"",
        "resource.label.subscription_id = \"${name}\"",
        "metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\"",
      ])
      content = templatefile("${path.module}/dead_letter_alert.md.tftpl", {
        project_id               = var.project_id
        consumer                 = var.consumer
        dead_letter_subscription = name
        source_subscription      = d.source_subscription
        topic                    = var.subscriptions[d.source_subscription].topic
        max_delivery_attempts    = var.subscriptions[d.source_subscription].max_delivery_attempts
      })
    }
  } : {}

  # One alert per push subscription: its oldest unacknowledged message is too old.
  backlog_alerts = var.enable_monitoring ? {
    for name, s in var.subscriptions : name => {
      display_name = "pubsub-kit ${var.consumer}: messages unacknowledged for over ${var.oldest_unacked_age_alert_seconds} s on ${name}"
      condition    = "Oldest unacknowledged message on ${name} older than ${var.oldest_unacked_age_alert_seconds} s"
      threshold    = var.oldest_unacked_age_alert_seconds
      filter = join(" AND ", [
        "resource.type = \"pubsub_subscription\"",
        "resource.label.project_id = \"${var.project_id}\"",
        "resource.label.subscription_id = \"${name}\"",
        "metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\"",
      ])
      content = templatefile("${path.module}/backlog_alert.md.tftpl", {
        project_id            = var.project_id
        region                = var.region
        consumer              = var.consumer
        function_name         = var.function_name
        subscription          = name
        topic                 = s.topic
        threshold             = var.oldest_unacked_age_alert_seconds
        dead_letter_topic     = s.dead_letter_topic
        max_delivery_attempts = s.max_delivery_attempts
      })
    }
  } : {}
}
