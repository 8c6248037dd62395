output "environment" {
  description = "Environment variables for the function: the OpenTelemetry settings when tracing is on, else {}."
  value       = local.environment
}

output "project_roles" {
  description = "Roles the function's service account needs on the project: [\"roles/cloudtrace.agent\"] when tracing is on, else none."
  value       = local.project_roles
}

output "dead_letter_alerts" {
  description = "One alert policy per dead-letter subscription, keyed by its name, when monitoring is on (else {}): display_name, condition (its display name), filter, threshold (messages) and content (the on-call text, Markdown)."
  value       = local.dead_letter_alerts

  precondition {
    condition     = alltrue([for d in values(var.dead_letter_topics) : contains(keys(var.subscriptions), d.source_subscription)])
    error_message = "Every dead-letter topic's source_subscription must be one of this consumer's subscriptions; regenerate infra/topology.json."
  }
}

output "backlog_alerts" {
  description = "One alert policy per push subscription, keyed by its name, when monitoring is on (else {}): display_name, condition, filter, threshold (seconds) and content (the on-call text, Markdown)."
  value       = local.backlog_alerts
}
