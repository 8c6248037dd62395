variable "project_id" {
  description = "Project that owns the topic."
  type        = string
}

variable "name" {
  description = "Topic id, e.g. \"post-liked\" (kebab-case in the topology; Pub/Sub allows 3-255 characters, not starting with \"goog\")."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9._~%+-]{2,254}$", var.name)) && !startswith(var.name, "goog")
    error_message = "A topic id is 3-255 characters (letters, digits, - . _ ~ % +), starts with a letter and does not start with \"goog\"."
  }
}

variable "message_retention_duration" {
  description = "How long the topic keeps published messages for replay (seek), e.g. \"604800s\"; \"\" or null keeps none at topic level."
  type        = string
  default     = null

  validation {
    condition = (
      var.message_retention_duration == null || var.message_retention_duration == "" ||
      (
        can(regex("^[0-9]+(\\.[0-9]+)?s$", var.message_retention_duration)) &&
        try(tonumber(trimsuffix(var.message_retention_duration, "s")) >= 600 && tonumber(trimsuffix(var.message_retention_duration, "s")) <= 2678400, false)
      )
    )
    error_message = "message_retention_duration must be a duration in seconds like \"604800s\", between \"600s\" (10 minutes) and \"2678400s\" (31 days), or empty."
  }
}

variable "schema" {
  description = <<-EOT
    Optional Pub/Sub schema that every message published to the topic is validated against.
    Pub/Sub schemas are Avro or Protocol Buffer definitions (not JSON Schema); with encoding
    "JSON" the message data stays the JSON the toolkit publishes. null: no schema.
  EOT
  type = object({
    type       = string
    definition = string
    encoding   = optional(string, "JSON")
  })
  default = null

  validation {
    condition     = var.schema == null || contains(["AVRO", "PROTOCOL_BUFFER"], try(var.schema.type, ""))
    error_message = "schema.type must be \"AVRO\" or \"PROTOCOL_BUFFER\"."
  }

  validation {
    condition     = var.schema == null || contains(["JSON", "BINARY"], try(var.schema.encoding, ""))
    error_message = "schema.encoding must be \"JSON\" or \"BINARY\"."
  }
}
