output "function_urls" {
  description = "HTTPS URL of each consumer's function, keyed by consumer name. Private: only the push service account may invoke them."
  value       = { for name, c in module.consumer : name => c.function_uri }
}

output "function_names" {
  description = "Cloud Functions (2nd gen) function id of each consumer, keyed by consumer name (for `gcloud functions logs read NAME --gen2`)."
  value       = { for name, c in module.consumer : name => c.function_name }
}

output "topic_ids" {
  description = "Topic ids (projects/P/topics/T), keyed by topic name."
  value       = { for name, t in module.topic : name => t.id }

  # A schema for a topic the topology does not declare is a typo, not a no-op.
  precondition {
    condition     = length(setsubtract(keys(var.topic_schemas), keys(local.topics))) == 0
    error_message = "topic_schemas names topics that infra/topology.json does not declare: ${join(", ", setsubtract(keys(var.topic_schemas), keys(local.topics)))}."
  }
}

output "push_subscription_ids" {
  description = "Push subscription ids (projects/P/subscriptions/S), keyed by subscription name (\"<topic>--<consumer>\")."
  value       = merge([for c in module.consumer : c.push_subscription_ids]...)
}

output "dead_letter_topic_ids" {
  description = "Dead-letter topic ids, keyed by topic name (\"<topic>--<consumer>--dlq\")."
  value       = merge([for c in module.consumer : c.dead_letter_topic_ids]...)
}

output "dead_letter_subscription_ids" {
  description = "Pull subscriptions on the dead-letter topics (same names as the topics), keyed by name: where dead letters wait to be inspected and replayed."
  value       = merge([for c in module.consumer : c.dead_letter_subscription_ids]...)
}

output "service_account_emails" {
  description = "Email of the service account each consumer's function runs as, keyed by consumer name."
  value       = { for name, c in module.consumer : name => c.service_account_email }
}

output "push_invoker_email" {
  description = "Email of the push identity: Pub/Sub signs push requests as this account, the only one holding roles/run.invoker on the functions."
  value       = google_service_account.push_invoker.email
}

output "pubsub_service_agent" {
  description = "The project's Pub/Sub service agent, granted publish on dead-letter topics, subscribe on push subscriptions and token creation on the push identity."
  value       = local.pubsub_service_agent
}

output "source_bucket" {
  description = "Bucket holding the function source archives (uniform access, public access prevention enforced, versioned)."
  value       = google_storage_bucket.sources.name
}

output "firestore_database" {
  description = "Firestore database the store uses (\"(default)\"), or null when no consumer uses the store."
  value       = local.uses_store ? "(default)" : null
}

output "build_service_account" {
  description = "Service account Cloud Build builds the functions as (projects/PROJECT/serviceAccounts/EMAIL): var.build_service_account, or the account created with roles/run.builder."
  value       = local.build_service_account
}

output "log_metric_types" {
  description = "Metric type of each log-based metric (for Metrics Explorer, dashboards and alert filters), keyed by metric name: pubsub_kit/messages and pubsub_kit/handler_duration when enable_monitoring is on, else {}."
  value = {
    for name, m in merge(google_logging_metric.messages, google_logging_metric.handler_duration) :
    name => "logging.googleapis.com/user/${m.name}"
  }
}

output "alert_policy_ids" {
  description = "Alert policy ids (projects/P/alertPolicies/ID), keyed by the subscription each one watches: every dead-letter and push subscription when enable_monitoring is on, else {}."
  value       = merge([for c in module.consumer : c.alert_policy_ids]...)
}
