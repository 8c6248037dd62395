output "function_name" {
  description = "Function id (the consumer name with \"_\" replaced by \"-\"); also its Cloud Run service name."
  value       = google_cloudfunctions2_function.this.name
}

output "function_id" {
  description = "Function resource id: projects/PROJECT/locations/REGION/functions/NAME."
  value       = google_cloudfunctions2_function.this.id
}

output "function_uri" {
  description = "HTTPS URL of the function; the push endpoint and OIDC audience of its subscriptions. Not publicly invokable."
  value       = google_cloudfunctions2_function.this.service_config[0].uri
}

output "service_name" {
  description = "Cloud Run service that runs the function (where roles/run.invoker is granted)."
  value       = google_cloudfunctions2_function.this.service_config[0].service
}

output "service_account_email" {
  description = "Email of the service account the function runs as."
  value       = google_service_account.function.email
}

output "push_subscription_ids" {
  description = "Push subscription ids (projects/P/subscriptions/S), keyed by subscription name."
  value       = { for name, s in google_pubsub_subscription.push : name => s.id }
}

output "dead_letter_topic_ids" {
  description = "Dead-letter topic ids (projects/P/topics/T), keyed by topic name."
  value       = { for name, t in google_pubsub_topic.dead_letter : name => t.id }
}

output "dead_letter_subscription_ids" {
  description = "Pull subscriptions on the dead-letter topics (same names as the topics), keyed by name; inspect and replay dead letters from these."
  value       = { for name, s in google_pubsub_subscription.dead_letter : name => s.id }
}

output "source_object" {
  description = "Bucket object (gs://BUCKET/NAME) holding the deployed source archive; its name carries the archive's SHA-256."
  value       = "gs://${google_storage_bucket_object.source.bucket}/${google_storage_bucket_object.source.name}"
}

output "alert_policy_ids" {
  description = "Alert policy ids (projects/P/alertPolicies/ID), keyed by the subscription each one watches: every dead-letter and push subscription when enable_monitoring is on, else {}."
  value = merge(
    { for name, p in google_monitoring_alert_policy.dead_letter : name => p.name },
    { for name, p in google_monitoring_alert_policy.backlog : name => p.name },
  )
}
