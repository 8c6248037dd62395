output "id" {
  description = "Topic id in the form projects/PROJECT/topics/NAME (what subscriptions and IAM bindings take)."
  value       = google_pubsub_topic.this.id
}

output "name" {
  description = "Topic name (the short id)."
  value       = google_pubsub_topic.this.name
}

output "schema_id" {
  description = "Schema id (projects/PROJECT/schemas/NAME) when a schema is attached, else null."
  value       = try(google_pubsub_schema.this[var.name].id, null)
}
