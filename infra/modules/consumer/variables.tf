variable "project_id" {
  description = "Project the consumer is deployed to."
  type        = string
}

variable "region" {
  description = "Region of the function (and of its Cloud Run service)."
  type        = string
}

variable "name" {
  description = "Consumer name from infra/topology.json (snake_case); the function id and service account id are derived from it by modules/naming."
  type        = string
}

variable "function" {
  description = "How the consumer's Cloud Function (2nd gen) runs: the \"consumers\" entry of infra/topology.json."
  type = object({
    entry_point     = string
    runtime         = string
    memory          = string
    timeout_seconds = number
    max_instances   = number
    min_instances   = optional(number, 0)
    concurrency     = optional(number, 1)
    environment     = optional(map(string), {})
    publishes_to    = optional(list(string), [])
    uses_store      = optional(bool, false)
  })

  validation {
    condition     = can(regex("^python3[0-9]+$", var.function.runtime))
    error_message = "function.runtime must be a Python runtime id like \"python311\"."
  }

  validation {
    condition     = can(regex("^[1-9][0-9]*(M|Mi|G|Gi)$", var.function.memory))
    error_message = "function.memory must look like \"256Mi\" or \"1Gi\"."
  }

  validation {
    condition     = var.function.timeout_seconds >= 1 && var.function.timeout_seconds <= 540
    error_message = "function.timeout_seconds must be 1-540 seconds (as the topology allows; a push request is cut at the ack deadline anyway)."
  }

  validation {
    condition     = var.function.min_instances >= 0 && var.function.min_instances <= var.function.max_instances
    error_message = "function.min_instances must be between 0 and function.max_instances."
  }

  validation {
    condition     = var.function.concurrency >= 1 && var.function.concurrency <= 1000 && floor(var.function.concurrency) == var.function.concurrency
    error_message = "function.concurrency (requests one instance handles at once) must be a whole number 1-1000."
  }
}

variable "subscriptions" {
  description = "Push subscriptions feeding this consumer, keyed by subscription name (\"<topic>--<consumer>\"): the consumer's entries of \"subscriptions\" in infra/topology.json."
  type = map(object({
    topic                   = string
    ack_deadline_seconds    = number
    max_delivery_attempts   = number
    minimum_backoff         = string
    maximum_backoff         = string
    filter                  = optional(string, "")
    enable_message_ordering = optional(bool, false)
    dead_letter_topic       = optional(string, "")
  }))

  validation {
    condition     = alltrue([for s in values(var.subscriptions) : s.ack_deadline_seconds >= 10 && s.ack_deadline_seconds <= 600])
    error_message = "Every ack_deadline_seconds must be 10-600."
  }

  validation {
    condition     = alltrue([for s in values(var.subscriptions) : s.max_delivery_attempts >= 5 && s.max_delivery_attempts <= 100])
    error_message = "Every max_delivery_attempts must be 5-100 (Pub/Sub's range for dead-letter policies)."
  }

  validation {
    condition = alltrue(flatten([
      for s in values(var.subscriptions) : [
        for d in [s.minimum_backoff, s.maximum_backoff] :
        d == "" || (can(regex("^[0-9]+(\\.[0-9]+)?s$", d)) && try(tonumber(trimsuffix(d, "s")) <= 600, false))
      ]
    ]))
    error_message = "Every minimum_backoff and maximum_backoff must be a duration like \"10s\", at most \"600s\" (or \"\" for Pub/Sub's default)."
  }
}

variable "dead_letter_topics" {
  description = "Dead-letter topics of this consumer's subscriptions, keyed by topic name (\"<subscription>--dlq\"): the consumer's entries of \"dead_letter_topics\" in infra/topology.json. Each gets a pull subscription of the same name."
  type = map(object({
    source_subscription = string
  }))
}

variable "topic_ids" {
  description = "Ids (projects/P/topics/T) of the topology's topics, keyed by topic name; the consumer's subscriptions and publish grants are looked up here."
  type        = map(string)
}

variable "source_bucket" {
  description = "Name of the bucket that holds the function source archives."
  type        = string
}

variable "archive_path" {
  description = "Local path of the zip built by `pubsub-kit package` for this consumer (dist-functions/<name>.zip)."
  type        = string
}

variable "push_invoker_email" {
  description = "Email of the service account Pub/Sub signs push requests as (OIDC token); it gets roles/run.invoker on this function only."
  type        = string
}

variable "pubsub_service_agent" {
  description = "Email of the project's Pub/Sub service agent (service-NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com), which forwards messages to dead-letter topics."
  type        = string
}

variable "ingress_settings" {
  description = "Function ingress: ALLOW_INTERNAL_ONLY (Pub/Sub push from the same project to the run.app URL counts as internal), ALLOW_INTERNAL_AND_GCLB, or ALLOW_ALL (reachable on its URL; every request still needs an identity with roles/run.invoker)."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.ingress_settings)
    error_message = "ingress_settings must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "environment" {
  description = "Environment variables set on the function besides those from the topology (the topology's win on a clash; the project id and store variables are always set by this module)."
  type        = map(string)
  default     = {}
}

variable "firestore_database" {
  description = "Id of the Firestore database the store uses (\"(default)\"); the function's roles/datastore.user grant is conditioned on it."
  type        = string
  default     = "(default)"

  validation {
    condition     = var.firestore_database == "(default)" || can(regex("^[a-z][a-z0-9-]{2,61}[a-z0-9]$", var.firestore_database))
    error_message = "firestore_database must be \"(default)\" or a database id: 4-63 lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "store_collection_prefix" {
  description = "Prefix of the Firestore collections the store uses (PUBSUB_KIT_STORE_PREFIX); must match the root module's TTL and index settings."
  type        = string
  default     = "pubsubkit"
}

variable "subscription_retention_duration" {
  description = "How long a push subscription keeps unacknowledged messages, e.g. \"604800s\": how long a consumer may be down without losing events."
  type        = string
  default     = "604800s" # 7 days

  validation {
    condition     = can(regex("^[0-9]+s$", var.subscription_retention_duration)) && try(tonumber(trimsuffix(var.subscription_retention_duration, "s")) >= 600 && tonumber(trimsuffix(var.subscription_retention_duration, "s")) <= 2678400, false)
    error_message = "subscription_retention_duration must be \"600s\" (10 minutes) to \"2678400s\" (31 days)."
  }
}

variable "dead_letter_retention_duration" {
  description = "How long dead-letter topics and their pull subscriptions keep messages, e.g. \"604800s\"."
  type        = string
  default     = "604800s" # 7 days

  validation {
    condition     = can(regex("^[0-9]+s$", var.dead_letter_retention_duration)) && try(tonumber(trimsuffix(var.dead_letter_retention_duration, "s")) >= 600 && tonumber(trimsuffix(var.dead_letter_retention_duration, "s")) <= 2678400, false)
    error_message = "dead_letter_retention_duration must be \"600s\" (10 minutes) to \"2678400s\" (31 days)."
  }
}

variable "build_service_account" {
  description = "Fully-qualified service account Cloud Build uses to build the function (projects/P/serviceAccounts/EMAIL); it must hold roles/run.builder; null: the project's default build account, which new projects may not let build functions."
  type        = string
  default     = null

  validation {
    condition     = var.build_service_account == null || can(regex("^projects/[^/]+/serviceAccounts/[^/]+@[^/]+$", var.build_service_account))
    error_message = "build_service_account must look like projects/PROJECT/serviceAccounts/EMAIL."
  }
}

variable "enable_tracing" {
  description = "Export the function's spans to Cloud Trace: sets OTEL_TRACES_EXPORTER = \"gcp_trace\", OTEL_SERVICE_NAME = the consumer name and OTEL_METRICS_EXPORTER = \"none\", and grants the function's account roles/cloudtrace.agent on the project. false: none of these."
  type        = bool
  default     = false
}

variable "enable_monitoring" {
  description = "Create an alert policy for each dead-letter subscription (any message waiting) and each push subscription (oldest unacknowledged message older than oldest_unacked_age_alert_seconds). false: none."
  type        = bool
  default     = false
}

variable "notification_channels" {
  description = "Notification channels of the alert policies, as projects/PROJECT/notificationChannels/ID; [] opens incidents in the console only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", c))])
    error_message = "Each notification channel must look like projects/PROJECT/notificationChannels/ID (`gcloud beta monitoring channels list --format='value(name)'`)."
  }
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

variable "labels" {
  description = "Labels of the alert policies (user_labels) besides app = \"pubsub-kit\" and consumer = the consumer name; the provider's default_labels label everything else."
  type        = map(string)
  default     = {}
}
