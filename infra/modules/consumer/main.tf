# One consumer: its Cloud Function (2nd gen), the identity it runs as, the push subscriptions
# that feed it (retry and dead-letter policies), its dead-letter topics with a pull subscription
# each, and only the IAM grants its code needs. Optionally (both off by default) tracing to Cloud
# Trace and an alert policy per subscription, derived by modules/observability.

module "naming" {
  source   = "../naming"
  consumer = var.name
}

# Tracing and alerting, derived offline from the toggles; everything it returns is empty when
# both are off, so no resource below exists then.
module "observability" {
  source = "../observability"

  project_id         = var.project_id
  region             = var.region
  consumer           = var.name
  function_name      = local.function_name
  subscriptions      = var.subscriptions
  dead_letter_topics = var.dead_letter_topics

  enable_tracing                   = var.enable_tracing
  enable_monitoring                = var.enable_monitoring
  oldest_unacked_age_alert_seconds = var.oldest_unacked_age_alert_seconds
}

locals {
  function_name = module.naming.function_name

  # A new archive hash is a new object name, hence a new build and deployment.
  archive_hash = fileexists(var.archive_path) ? filesha256(var.archive_path) : null

  # functions-framework serves THREADS requests at once; GCP recommends as many as the
  # declared concurrency. Set first: a THREADS the deployment sets itself wins.
  function_threads = { THREADS = tostring(var.function.concurrency) }

  # Set last so that neither the topology nor var.environment can point a function at another
  # project or store, or at a trace exporter its account holds no role for.
  managed_environment = merge(
    {
      PUBSUB_PROJECT_ID    = var.project_id
      GOOGLE_CLOUD_PROJECT = var.project_id
    },
    var.function.uses_store ? {
      PUBSUB_KIT_STORE        = "firestore"
      PUBSUB_KIT_STORE_PREFIX = var.store_collection_prefix
    } : {},
    module.observability.environment,
  )

  # The provider's default_labels do not reach alert policies (theirs are user_labels).
  alert_labels = merge({ app = "pubsub-kit" }, var.labels, { consumer = var.name })

  # Keyed by role so that for_each never depends on a list position.
  project_roles = var.function.uses_store ? toset(["roles/datastore.user"]) : toset([])
}

# --- identity ------------------------------------------------------------------------------

resource "google_service_account" "function" {
  project      = var.project_id
  account_id   = module.naming.service_account_id
  display_name = "pubsub-kit consumer ${var.name}"
  description  = "Runtime identity of the ${local.function_name} function (managed by pubsub-kit Terraform)."
}

# Firestore (idempotency keys, audit log). datastore.user is granted on the project (Firestore
# has no IAM policy of its own), so a condition narrows it to the one database the store uses.
resource "google_project_iam_member" "function" {
  for_each = local.project_roles

  project = var.project_id
  role    = each.key
  member  = google_service_account.function.member

  condition {
    title       = "pubsub-kit store database only"
    description = "Firestore database ${var.firestore_database} of the pubsub-kit store, no other."
    expression  = "resource.name == \"projects/${var.project_id}/databases/${var.firestore_database}\""
  }
}

# Cloud Trace (var.enable_tracing only): spans are written to the project, the only level
# Cloud Trace grants on, so this grant has no condition.
resource "google_project_iam_member" "tracing" {
  for_each = module.observability.project_roles

  project = var.project_id
  role    = each.key
  member  = google_service_account.function.member
}

# Topics the handler publishes follow-up events to.
resource "google_pubsub_topic_iam_member" "publishes" {
  for_each = toset(var.function.publishes_to)

  project = var.project_id
  topic   = var.topic_ids[each.key]
  role    = "roles/pubsub.publisher"
  member  = google_service_account.function.member

  lifecycle {
    precondition {
      condition     = contains(keys(var.topic_ids), each.key)
      error_message = "Consumer \"${var.name}\" publishes to topic \"${each.key}\", which infra/topology.json does not declare."
    }
  }
}

# --- dead letters --------------------------------------------------------------------------

resource "google_pubsub_topic" "dead_letter" {
  for_each = var.dead_letter_topics

  project                    = var.project_id
  name                       = each.key
  message_retention_duration = var.dead_letter_retention_duration
}

# A message published to a topic without a subscription is lost, so every dead-letter topic
# gets a pull subscription of the same name that keeps messages and never expires; dead letters
# are inspected and replayed from it.
resource "google_pubsub_subscription" "dead_letter" {
  for_each = var.dead_letter_topics

  project                    = var.project_id
  name                       = each.key
  topic                      = google_pubsub_topic.dead_letter[each.key].id
  ack_deadline_seconds       = 60
  message_retention_duration = var.dead_letter_retention_duration
  retain_acked_messages      = false

  expiration_policy {
    ttl = "" # never expire, however long nobody looks
  }
}

# Pub/Sub itself forwards a message that ran out of delivery attempts.
resource "google_pubsub_topic_iam_member" "dead_letter_service_agent" {
  for_each = var.dead_letter_topics

  project = var.project_id
  topic   = google_pubsub_topic.dead_letter[each.key].id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${var.pubsub_service_agent}"
}

# The runtime publishes permanently failing messages (PermanentError, undecodable payloads)
# to the dead-letter topic itself, with the reason attached, without waiting for the attempts.
resource "google_pubsub_topic_iam_member" "dead_letter_function" {
  for_each = var.dead_letter_topics

  project = var.project_id
  topic   = google_pubsub_topic.dead_letter[each.key].id
  role    = "roles/pubsub.publisher"
  member  = google_service_account.function.member
}

# --- function ------------------------------------------------------------------------------

resource "google_storage_bucket_object" "source" {
  bucket       = var.source_bucket
  name         = "${local.function_name}/${coalesce(local.archive_hash, "missing")}.zip"
  source       = var.archive_path
  content_type = "application/zip"

  lifecycle {
    # The function moves to the new archive before the old one is deleted.
    create_before_destroy = true

    precondition {
      condition     = local.archive_hash != null
      error_message = "No function archive at ${var.archive_path}. Build the archives first: `pubsub-kit package` (it writes dist-functions/<consumer>.zip), or point var.package_dir at them."
    }
  }
}

resource "google_cloudfunctions2_function" "this" {
  project     = var.project_id
  location    = var.region
  name        = local.function_name
  description = "pubsub-kit consumer ${var.name}"

  build_config {
    runtime         = var.function.runtime
    entry_point     = var.function.entry_point
    service_account = var.build_service_account

    source {
      storage_source {
        bucket = var.source_bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  # More than one request at a time needs a whole vCPU (available_cpu); null keeps the default
  # that follows the memory.
  service_config {
    available_memory                 = var.function.memory
    timeout_seconds                  = var.function.timeout_seconds
    max_instance_count               = var.function.max_instances
    min_instance_count               = var.function.min_instances
    max_instance_request_concurrency = var.function.concurrency
    available_cpu                    = var.function.concurrency > 1 ? "1" : null
    service_account_email            = google_service_account.function.email
    ingress_settings                 = var.ingress_settings
    all_traffic_on_latest_revision   = true
    environment_variables            = merge(local.function_threads, var.environment, var.function.environment, local.managed_environment)
  }

  # The first requests must find Firestore (and Cloud Trace) access in place.
  depends_on = [google_project_iam_member.function, google_project_iam_member.tracing]
}

# Private function: the only principal that may invoke it is the push identity. Cloud Functions
# (2nd gen) runs on Cloud Run, so the grant is on the underlying service.
resource "google_cloud_run_v2_service_iam_member" "push_invoker" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.this.service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${var.push_invoker_email}"
}

# --- push subscriptions --------------------------------------------------------------------

resource "google_pubsub_subscription" "push" {
  for_each = var.subscriptions

  project                 = var.project_id
  name                    = each.key
  topic                   = var.topic_ids[each.value.topic]
  ack_deadline_seconds    = each.value.ack_deadline_seconds # also the push request timeout
  filter                  = each.value.filter == "" ? null : each.value.filter
  enable_message_ordering = each.value.enable_message_ordering

  # A consumer that is down loses nothing: its backlog waits here.
  message_retention_duration = var.subscription_retention_duration

  expiration_policy {
    ttl = "" # a quiet topic must not delete its subscriptions after 31 days
  }

  # The standard push body (message, subscription, deliveryAttempt) is what the runtime reads,
  # so the payload is not unwrapped.
  push_config {
    push_endpoint = google_cloudfunctions2_function.this.service_config[0].uri

    oidc_token {
      service_account_email = var.push_invoker_email
      audience              = google_cloudfunctions2_function.this.service_config[0].uri
    }
  }

  dynamic "retry_policy" {
    for_each = each.value.minimum_backoff == "" && each.value.maximum_backoff == "" ? [] : [each.value]
    content {
      minimum_backoff = retry_policy.value.minimum_backoff == "" ? null : retry_policy.value.minimum_backoff
      maximum_backoff = retry_policy.value.maximum_backoff == "" ? null : retry_policy.value.maximum_backoff
    }
  }

  dynamic "dead_letter_policy" {
    for_each = each.value.dead_letter_topic == "" ? [] : [each.value]
    content {
      dead_letter_topic     = google_pubsub_topic.dead_letter[dead_letter_policy.value.dead_letter_topic].id
      max_delivery_attempts = dead_letter_policy.value.max_delivery_attempts
    }
  }

  lifecycle {
    precondition {
      condition     = contains(keys(var.topic_ids), each.value.topic)
      error_message = "Subscription \"${each.key}\" is on topic \"${each.value.topic}\", which infra/topology.json does not declare."
    }
    precondition {
      condition     = each.value.dead_letter_topic == "" || contains(keys(var.dead_letter_topics), each.value.dead_letter_topic)
      error_message = "Subscription \"${each.key}\" dead-letters to \"${each.value.dead_letter_topic}\", which is not among this consumer's dead_letter_topics; regenerate infra/topology.json."
    }
  }

  # Deliveries made before the invoker grant exists would only be refused and retried.
  depends_on = [google_cloud_run_v2_service_iam_member.push_invoker]
}

# Dead-lettering acknowledges the message on the source subscription, as the service agent.
resource "google_pubsub_subscription_iam_member" "push_service_agent" {
  for_each = var.subscriptions

  project      = var.project_id
  subscription = google_pubsub_subscription.push[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${var.pubsub_service_agent}"
}

# --- alerts (var.enable_monitoring) --------------------------------------------------------
# Conditions and on-call texts come from modules/observability; both maps are empty when
# monitoring is off. Pub/Sub writes these metrics once a minute, hence the 60 s alignment.

# Dead letters need a person: an event went unhandled.
resource "google_monitoring_alert_policy" "dead_letter" {
  for_each = module.observability.dead_letter_alerts

  project               = var.project_id
  display_name          = each.value.display_name
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.notification_channels
  user_labels           = local.alert_labels

  conditions {
    display_name = each.value.condition

    condition_threshold {
      filter          = each.value.filter
      comparison      = "COMPARISON_GT"
      threshold_value = each.value.threshold
      duration        = "0s" # one message waiting is enough

      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = each.value.display_name
    content   = each.value.content
  }

  depends_on = [google_pubsub_subscription.dead_letter]
}

# A backlog is lag, not loss (the subscription keeps it), so a warning.
resource "google_monitoring_alert_policy" "backlog" {
  for_each = module.observability.backlog_alerts

  project               = var.project_id
  display_name          = each.value.display_name
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = var.notification_channels
  user_labels           = local.alert_labels

  conditions {
    display_name = each.value.condition

    condition_threshold {
      filter          = each.value.filter
      comparison      = "COMPARISON_GT"
      threshold_value = each.value.threshold
      duration        = "0s" # the metric is itself an age: above the threshold once is enough

      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = each.value.display_name
    content   = each.value.content
  }

  depends_on = [google_pubsub_subscription.push]
}
