# One topic and, when asked for, the schema its messages are validated against.
locals {
  # Keyed by the topic name: an absent schema is an empty map, so no count is needed.
  schemas = var.schema == null ? {} : { (var.name) = var.schema }
}

resource "google_pubsub_schema" "this" {
  for_each = local.schemas

  project    = var.project_id
  name       = each.key
  type       = each.value.type
  definition = each.value.definition
}

resource "google_pubsub_topic" "this" {
  project = var.project_id
  name    = var.name

  message_retention_duration = var.message_retention_duration == "" ? null : var.message_retention_duration

  dynamic "schema_settings" {
    for_each = local.schemas
    content {
      schema   = google_pubsub_schema.this[schema_settings.key].id
      encoding = schema_settings.value.encoding
    }
  }
}
