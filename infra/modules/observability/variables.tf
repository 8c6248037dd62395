variable "project_id" {
  description = "Project the consumer is deployed to; the alert filters are narrowed to it, and the on-call commands in the alert texts name it."
  type        = string
}

variable "region" {
  description = "Region of the consumer's function, for the `gcloud functions logs read` command in the alert texts."
  type        = string
}

variable "consumer" {
  description = "Consumer name from infra/topology.json (snake_case): the service name of its traces, and the `consumer` field of its log lines."
  type        = string
}

variable "function_name" {
  description = "The consumer's function id (the consumer name with \"_\" replaced by \"-\", from modules/naming), for the commands in the alert texts."
  type        = string
}

variable "enable_tracing" {
  description = "Export the function's spans to Cloud Trace: the OpenTelemetry environment (OTEL_TRACES_EXPORTER = \"gcp_trace\", OTEL_SERVICE_NAME = the consumer, OTEL_METRICS_EXPORTER = \"none\") and roles/cloudtrace.agent. false: neither."
  type        = bool
  default     = false
}

variable "enable_monitoring" {
  description = "Derive an alert policy for each dead-letter subscription (messages waiting) and each push subscription (oldest unacknowledged message older than oldest_unacked_age_alert_seconds). false: none."
  type        = bool
  default     = false
}

variable "subscriptions" {
  description = "The consumer's push subscriptions, keyed by name (\"<topic>--<consumer>\"): the fields of the consumer module's `subscriptions` that the alert texts quote."
  type = map(object({
    topic                 = string
    max_delivery_attempts = number
    dead_letter_topic     = optional(string, "")
  }))
  default = {}
}

variable "dead_letter_topics" {
  description = "The consumer's dead-letter topics, keyed by name (\"<subscription>--dlq\"); each has a pull subscription of the same name, which its alert watches."
  type = map(object({
    source_subscription = string
  }))
  default = {}
}

variable "oldest_unacked_age_alert_seconds" {
  description = "A push subscription's alert fires when its oldest unacknowledged message is older than this many seconds."
  type        = number
  default     = 600 # 10 minutes

  validation {
    condition     = var.oldest_unacked_age_alert_seconds > 0 && floor(var.oldest_unacked_age_alert_seconds) == var.oldest_unacked_age_alert_seconds
    error_message = "oldest_unacked_age_alert_seconds must be a whole number of seconds above 0, e.g. 600."
  }
}
