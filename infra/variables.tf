variable "project_id" {
  description = "Google Cloud project id to deploy into (billing enabled)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project id (not its name or number): 6-30 lower-case letters, digits and hyphens, starting with a letter, e.g. \"my-project-123\"."
  }
}

variable "region" {
  description = "Region of the functions and the source bucket, e.g. \"europe-west1\" or \"us-central1\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a region such as \"europe-west1\" (not a zone like \"europe-west1-b\", nor a multi-region)."
  }
}

variable "enable_apis" {
  description = "Enable the APIs the deployment needs (they stay enabled on destroy). Turn off when another stack manages project services."
  type        = bool
  default     = true
}

variable "enable_tracing" {
  description = <<-EOT
    Trace every message to Cloud Trace. Each function gets OTEL_TRACES_EXPORTER = "gcp_trace",
    OTEL_SERVICE_NAME = its consumer name and OTEL_METRICS_EXPORTER = "none" (the runtime reads
    these standard OpenTelemetry variables; the gcp_trace exporter is in pubsub-kit[otel]), its
    service account gets roles/cloudtrace.agent on the project, and cloudtrace.googleapis.com is
    enabled with the other APIs. false (the default): none of these.
  EOT
  type        = bool
  default     = false
}

variable "enable_monitoring" {
  description = <<-EOT
    Log-based metrics and alert policies. Two metrics read the one log line each function writes
    per message: pubsub_kit/messages (a count by consumer and status: handled, duplicate,
    filtered, busy, retry, rejected, dead_lettered, dead_letter_failed) and
    pubsub_kit/handler_duration (a distribution of duration_ms, by consumer and status). One
    alert policy per dead-letter subscription (any message waiting) and one per push
    subscription (oldest unacknowledged message older than oldest_unacked_age_alert_seconds),
    each telling the on-call what to run; monitoring.googleapis.com is enabled with the other
    APIs. false (the default): none of these.
  EOT
  type        = bool
  default     = false
}

variable "notification_channels" {
  description = "Notification channels the alert policies notify, as projects/PROJECT/notificationChannels/ID (`gcloud beta monitoring channels list --format='value(name)'`); [] (the default) opens incidents in the console only. Used only with enable_monitoring."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", c))])
    error_message = "Each notification channel must look like projects/PROJECT/notificationChannels/ID (`gcloud beta monitoring channels list --format='value(name)'`)."
  }
}

variable "oldest_unacked_age_alert_seconds" {
  description = "With enable_monitoring, a push subscription's alert fires when its oldest unacknowledged message is older than this many seconds: the consumer is failing, down or too slow, or one message keeps being retried."
  type        = number
  default     = 600 # 10 minutes

  validation {
    condition     = var.oldest_unacked_age_alert_seconds > 0 && floor(var.oldest_unacked_age_alert_seconds) == var.oldest_unacked_age_alert_seconds
    error_message = "oldest_unacked_age_alert_seconds must be a whole number of seconds above 0, e.g. 600."
  }
}

variable "package_dir" {
  description = "Directory holding the function archives written by `pubsub-kit package` (<consumer>.zip each); relative to infra/ unless absolute."
  type        = string
  default     = "../dist-functions"

  validation {
    condition     = length(trimspace(var.package_dir)) > 0
    error_message = "package_dir must name a directory, e.g. \"../dist-functions\"."
  }
}

variable "source_bucket_name" {
  description = "Name of the bucket for function source archives; null: \"<project_id>-pubsub-kit-sources\"."
  type        = string
  default     = null

  validation {
    condition     = var.source_bucket_name == null || can(regex("^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$", var.source_bucket_name))
    error_message = "source_bucket_name must be 3-63 lower-case letters, digits, \"-\" and \"_\", starting and ending with a letter or digit."
  }
}

variable "source_bucket_location" {
  description = "Location of the source bucket; null: the region."
  type        = string
  default     = null
}

variable "source_bucket_force_destroy" {
  description = "Let `terraform destroy` delete the source bucket with the archive versions it still holds (they are build output, reproducible from the repository)."
  type        = bool
  default     = true
}

variable "function_ingress_settings" {
  description = <<-EOT
    Ingress of every function. ALLOW_INTERNAL_ONLY (the default) is what push needs: Cloud Run
    counts Pub/Sub push from the same project to the function's run.app URL as internal
    traffic, and refuses every caller outside the project (or its VPC Service Controls
    perimeter) before authentication. ALLOW_ALL opens the URL to the internet (requests still
    need an identity holding roles/run.invoker, which only the push account has), for example to
    call a function by hand with curl; ALLOW_INTERNAL_AND_GCLB adds an external load balancer.
  EOT
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.function_ingress_settings)
    error_message = "function_ingress_settings must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "function_environment" {
  description = "Extra environment variables for every function (e.g. { PUBSUB_KIT_LOG_LEVEL = \"DEBUG\" }); a consumer's own environment in the topology wins on a clash."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([
      for k in keys(var.function_environment) :
      can(regex("^[A-Za-z_][A-Za-z0-9_]*$", k)) && !startswith(k, "X_GOOGLE_") &&
      !contains(["PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION", "FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE"], k)
    ])
    error_message = "function_environment keys must be identifiers, and not names Cloud Run reserves (PORT, K_SERVICE, K_REVISION, K_CONFIGURATION, FUNCTION_TARGET, FUNCTION_SIGNATURE_TYPE, X_GOOGLE_*)."
  }
}

variable "build_service_account" {
  description = "Service account Cloud Build uses to build the functions, as projects/PROJECT/serviceAccounts/EMAIL (it must hold roles/run.builder, and the deploying identity iam.serviceAccounts.actAs on it); null: a dedicated account (build_account_id) is created and granted roles/run.builder on the project."
  type        = string
  default     = null

  validation {
    condition     = var.build_service_account == null || can(regex("^projects/[^/]+/serviceAccounts/[^/]+@[^/]+$", var.build_service_account))
    error_message = "build_service_account must look like projects/PROJECT/serviceAccounts/EMAIL."
  }
}

variable "build_account_id" {
  description = "Account id of the build service account created when build_service_account is null."
  type        = string
  default     = "pubsub-kit-build"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.build_account_id))
    error_message = "build_account_id must be 6-30 lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "push_invoker_account_id" {
  description = "Account id of the service account Pub/Sub signs push requests as; the only principal allowed to invoke the functions."
  type        = string
  default     = "pubsub-push-invoker"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.push_invoker_account_id))
    error_message = "push_invoker_account_id must be 6-30 lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "subscription_retention_duration" {
  description = "How long each push subscription keeps unacknowledged messages (\"600s\" to \"2678400s\"): how long a consumer can be down without losing events."
  type        = string
  default     = "604800s" # 7 days

  validation {
    condition     = can(regex("^[0-9]+s$", var.subscription_retention_duration)) && try(tonumber(trimsuffix(var.subscription_retention_duration, "s")) >= 600 && tonumber(trimsuffix(var.subscription_retention_duration, "s")) <= 2678400, false)
    error_message = "subscription_retention_duration must be \"600s\" (10 minutes) to \"2678400s\" (31 days)."
  }
}

variable "dead_letter_retention_duration" {
  description = "How long dead-letter topics and their pull subscriptions keep messages (\"600s\" to \"2678400s\")."
  type        = string
  default     = "604800s" # 7 days

  validation {
    condition     = can(regex("^[0-9]+s$", var.dead_letter_retention_duration)) && try(tonumber(trimsuffix(var.dead_letter_retention_duration, "s")) >= 600 && tonumber(trimsuffix(var.dead_letter_retention_duration, "s")) <= 2678400, false)
    error_message = "dead_letter_retention_duration must be \"600s\" (10 minutes) to \"2678400s\" (31 days)."
  }
}

variable "topic_schemas" {
  description = <<-EOT
    Optional Pub/Sub schemas, keyed by topic name (topics not listed get none). Pub/Sub validates
    every publish against the schema, which must be Avro or Protocol Buffer (Pub/Sub does not take
    JSON Schema); with encoding "JSON" the data stays the JSON the toolkit publishes. A schema must
    accept every event version published on its topic.
  EOT
  type = map(object({
    type       = string
    definition = string
    encoding   = optional(string, "JSON")
  }))
  default = {}

  validation {
    condition     = alltrue([for s in values(var.topic_schemas) : contains(["AVRO", "PROTOCOL_BUFFER"], s.type)])
    error_message = "Each topic_schemas entry's type must be \"AVRO\" or \"PROTOCOL_BUFFER\"."
  }

  validation {
    condition     = alltrue([for s in values(var.topic_schemas) : contains(["JSON", "BINARY"], s.encoding)])
    error_message = "Each topic_schemas entry's encoding must be \"JSON\" or \"BINARY\"."
  }
}

variable "create_firestore_database" {
  description = "Create the Firestore (default) database in native mode when a consumer uses the store. Turn off when the project already has one."
  type        = bool
  default     = true
}

variable "firestore_location" {
  description = "Firestore location: a region (\"europe-west1\") or multi-region (\"eur3\", \"nam5\"); null: the region. Cannot be changed once the database exists."
  type        = string
  default     = null

  validation {
    condition     = var.firestore_location == null || can(regex("^[a-z][a-z0-9-]*[0-9]$", var.firestore_location))
    error_message = "firestore_location must look like \"europe-west1\", \"eur3\" or \"nam5\"."
  }
}

variable "firestore_deletion_policy" {
  description = "What `terraform destroy` does to the Firestore database: ABANDON (forget it, keep the data; the provider's default) or DELETE (delete it with its data)."
  type        = string
  default     = "ABANDON"

  validation {
    condition     = contains(["ABANDON", "DELETE"], var.firestore_deletion_policy)
    error_message = "firestore_deletion_policy must be ABANDON or DELETE."
  }
}

variable "firestore_delete_protection" {
  description = "Firestore delete protection: nobody can delete the database (which holds the audit log) until it is turned off. On by default; see docs/deploy.md to tear down."
  type        = bool
  default     = true
}

variable "store_collection_prefix" {
  description = "Collection-name prefix of the Firestore store (FirestoreStore's prefix, default \"pubsubkit\"); TTL policies on expire_at are set for its claims and applied-token collections."
  type        = string
  default     = "pubsubkit"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,100}$", var.store_collection_prefix))
    error_message = "store_collection_prefix must be 1-100 letters, digits, \"_\", \".\" or \"-\" (as FirestoreStore accepts)."
  }
}

variable "labels" {
  description = "Labels added to every resource that takes labels (besides app = \"pubsub-kit\")."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([
      for k, v in var.labels :
      can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))
    ])
    error_message = "Label keys must be 1-63 lower-case letters, digits, \"_\" or \"-\" starting with a letter; values at most 63 of the same characters."
  }
}
