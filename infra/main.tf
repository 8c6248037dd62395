# pubsub-kit on Google Cloud: topics, push subscriptions with retry and dead-letter policies,
# one private Cloud Function (2nd gen) per consumer, and the IAM that ties them together.
#
# Every topic, subscription and consumer comes from topology.json, generated from the Python
# topology (`pubsub-kit topology export --terraform`); nothing here names one by hand.

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = merge({ app = "pubsub-kit" }, var.labels)
}

# Used for one resource only: google_project_service_identity (the Pub/Sub service agent), which
# the GA provider does not have at either end of the supported range (see docs/deploy.md).
provider "google-beta" {
  project = var.project_id
  region  = var.region
}

locals {
  topology           = jsondecode(file("${path.module}/topology.json"))
  topics             = local.topology.topics
  subscriptions      = local.topology.subscriptions
  dead_letter_topics = local.topology.dead_letter_topics
  consumers          = local.topology.consumers

  package_dir = startswith(var.package_dir, "/") ? var.package_dir : "${path.module}/${var.package_dir}"

  uses_store = anytrue([for c in values(local.consumers) : c.uses_store])

  apis = var.enable_apis ? setunion(
    [
      "artifactregistry.googleapis.com", # function images
      "cloudbuild.googleapis.com",       # function builds
      "cloudfunctions.googleapis.com",
      "cloudresourcemanager.googleapis.com", # project lookup and project-level IAM
      "firestore.googleapis.com",
      "iam.googleapis.com",
      "logging.googleapis.com", # function and build logs, log-based metrics
      "pubsub.googleapis.com",
      "run.googleapis.com", # functions run as Cloud Run services
      "storage.googleapis.com",
    ],
    var.enable_tracing ? ["cloudtrace.googleapis.com"] : [],    # spans the functions export
    var.enable_monitoring ? ["monitoring.googleapis.com"] : [], # alert policies
  ) : toset([])

  # Pub/Sub's own identity in this project: it forwards messages to dead-letter topics and signs
  # the OIDC tokens of push requests. Every grant to it depends on
  # google_project_service_identity.pubsub, which makes sure it exists first.
  pubsub_service_agent = "service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  # The one database the store uses; the functions' Firestore grant is conditioned on it.
  firestore_database = "(default)"

  # Cloud Build builds every function as this account: the one given, or the one created here.
  build_service_account = (
    var.build_service_account != null
    ? var.build_service_account
    : google_service_account.build[var.build_account_id].id
  )

  source_bucket_name = coalesce(var.source_bucket_name, "${var.project_id}-pubsub-kit-sources")

  # The store's documents that carry an expire_at timestamp (see shared/stores/firestore.py).
  ttl_collections = local.uses_store ? toset([
    "${var.store_collection_prefix}_claims",
    "${var.store_collection_prefix}_applied",
  ]) : toset([])
}

# --- project ---------------------------------------------------------------------------------

resource "google_project_service" "this" {
  for_each = local.apis

  project = var.project_id
  service = each.key

  # Another workload in the project may use the same API.
  disable_on_destroy = false
}

data "google_project" "this" {
  project_id = var.project_id

  depends_on = [google_project_service.this]
}

# Pub/Sub creates its service agent lazily; granting a role to it before it exists fails with
# "service account ... does not exist". Asking Service Usage for the identity creates it (and
# returns at once when it exists), so the grants to it can run on the first apply.
resource "google_project_service_identity" "pubsub" {
  provider = google-beta

  project = var.project_id
  service = "pubsub.googleapis.com"

  depends_on = [google_project_service.this]
}

# --- Firestore (idempotency keys, audit log) -------------------------------------------------

resource "google_firestore_database" "this" {
  for_each = var.create_firestore_database && local.uses_store ? toset(["(default)"]) : toset([])

  project                 = var.project_id
  name                    = each.key
  location_id             = coalesce(var.firestore_location, var.region)
  type                    = "FIRESTORE_NATIVE"
  deletion_policy         = var.firestore_deletion_policy
  delete_protection_state = var.firestore_delete_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"

  depends_on = [google_project_service.this]
}

# Firestore deletes expired claims and applied tokens by itself (within about a day of expiry).
# The empty index_config drops the field's single-field indexes, as Firestore advises for TTL
# fields: a timestamp that only grows makes index hotspots on write, and nothing queries it.
resource "google_firestore_field" "expire_at" {
  for_each = local.ttl_collections

  project    = var.project_id
  database   = local.firestore_database
  collection = each.key
  field      = "expire_at"

  ttl_config {}

  index_config {}

  depends_on = [google_project_service.this, google_firestore_database.this]
}

# The audit log's queries (by subject, actor, event type and time range, ordered by time, oldest
# or newest first: `pubsub-kit audit` shows the newest) need composite indexes in real Firestore;
# the emulator needs none. Queries that combine equality filters use Firestore's merge of these.
# Keyed by name, never by position.
locals {
  audit_index_fields = {
    time          = ["time", "event_id"]
    subject       = ["subject", "time", "event_id"]
    actor         = ["actor", "time", "event_id"]
    event_type    = ["event_type", "time", "event_id"]
    subject_actor = ["subject", "actor", "time", "event_id"]
  }
  audit_indexes = local.uses_store ? merge([
    for order in ["ASCENDING", "DESCENDING"] : {
      for name, fields in local.audit_index_fields :
      "${name}_${lower(order)}" => { fields = fields, order = order }
    }
  ]...) : {}
}

resource "google_firestore_index" "audit" {
  for_each = local.audit_indexes

  project    = var.project_id
  database   = local.firestore_database
  collection = "${var.store_collection_prefix}_audit"

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path = fields.value
      # The ordering fields take the query's direction; equality fields' order does not matter.
      order = contains(["time", "event_id"], fields.value) ? each.value.order : "ASCENDING"
    }
  }

  depends_on = [google_project_service.this, google_firestore_database.this]
}

# --- function sources ------------------------------------------------------------------------

resource "google_storage_bucket" "sources" {
  project  = var.project_id
  name     = local.source_bucket_name
  location = upper(coalesce(var.source_bucket_location, var.region))

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.source_bucket_force_destroy

  versioning {
    enabled = true
  }

  # Archives are replaced on every change (their name carries their hash); keep the old ones
  # for a month, for rollbacks and audits, then let them go.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.this]
}

# --- push identity ---------------------------------------------------------------------------

# The only principal allowed to invoke the functions; Pub/Sub signs every push request as it.
resource "google_service_account" "push_invoker" {
  project      = var.project_id
  account_id   = var.push_invoker_account_id
  display_name = "pubsub-kit push invoker"
  description  = "Identity in the OIDC token of Pub/Sub push requests to pubsub-kit functions; holds roles/run.invoker on each function, nothing else."

  depends_on = [google_project_service.this]
}

# Pub/Sub mints the OIDC tokens as this account. Granted on the account itself, not the project.
# (Required for projects created before April 2021; harmless for newer ones.)
resource "google_service_account_iam_member" "push_token_creator" {
  service_account_id = google_service_account.push_invoker.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${local.pubsub_service_agent}"

  depends_on = [google_project_service_identity.pubsub]
}

# --- build identity --------------------------------------------------------------------------

# Since mid-2024 new projects build functions with a default account that may lack the
# permissions to do so. Unless var.build_service_account names one, every function is built as
# this account, which holds only roles/run.builder ("Can build Cloud Run functions and source
# deployed services": read the source archive, push the image to Artifact Registry, write
# build logs).
resource "google_service_account" "build" {
  for_each = var.build_service_account == null ? toset([var.build_account_id]) : toset([])

  project      = var.project_id
  account_id   = each.key
  display_name = "pubsub-kit function builds"
  description  = "Cloud Build identity of the pubsub-kit functions (build_config.service_account); holds roles/run.builder on the project, nothing else."

  depends_on = [google_project_service.this]
}

# On the project: the build creates the Artifact Registry repository (gcf-artifacts) and its
# log entries itself, so there is no narrower resource to grant on beforehand.
resource "google_project_iam_member" "build" {
  for_each = google_service_account.build

  project = var.project_id
  role    = "roles/run.builder"
  member  = each.value.member
}

# --- log-based metrics (var.enable_monitoring) ----------------------------------------------

locals {
  # The one line the runtime logs per message (shared/runtime/observe.py), as Cloud Logging
  # stores it: {"logger": "pubsub_kit.consumer", "consumer": ..., "status": ..., "outcome": ...,
  # "duration_ms": ..., ...} in jsonPayload. The logger's other lines (a slow-handling warning,
  # a handler's exception) have no status, so they are not counted.
  message_log_filter = "jsonPayload.logger=\"pubsub_kit.consumer\" AND jsonPayload.status:*"

  # Both metrics are labelled alike. Statuses are the runtime's fixed set and consumers the
  # topology's, so the number of time series stays small.
  message_metric_labels = {
    consumer = "Consumer name from the topology (snake_case)."
    status   = "How the message ended: handled, duplicate, filtered, busy, retry, rejected, dead_lettered or dead_letter_failed."
  }
  message_label_extractors = {
    consumer = "EXTRACT(jsonPayload.consumer)"
    status   = "EXTRACT(jsonPayload.status)"
  }
}

# Messages by consumer and status: handled, duplicate, filtered, retried and dead-lettered counts
# per consumer all come from this one metric.
resource "google_logging_metric" "messages" {
  for_each = var.enable_monitoring ? toset(["pubsub_kit/messages"]) : toset([])

  project          = var.project_id
  name             = each.key
  description      = "pubsub-kit: messages received by each consumer, by how they ended (status). One per log line of logger pubsub_kit.consumer with a status."
  filter           = local.message_log_filter
  label_extractors = local.message_label_extractors

  metric_descriptor {
    display_name = "pubsub-kit messages"
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"

    dynamic "labels" {
      for_each = local.message_metric_labels
      content {
        key         = labels.key
        value_type  = "STRING"
        description = labels.value
      }
    }
  }

  depends_on = [google_project_service.this]
}

# How long each message took, from receipt to answer, by consumer and status (filter on
# status "handled" for the handlers' own time).
resource "google_logging_metric" "handler_duration" {
  for_each = var.enable_monitoring ? toset(["pubsub_kit/handler_duration"]) : toset([])

  project          = var.project_id
  name             = each.key
  description      = "pubsub-kit: time each message took in its consumer (duration_ms of the per-message log line), by consumer and status."
  filter           = "${local.message_log_filter} AND jsonPayload.duration_ms:*"
  value_extractor  = "EXTRACT(jsonPayload.duration_ms)"
  label_extractors = local.message_label_extractors

  metric_descriptor {
    display_name = "pubsub-kit handler duration"
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "ms"

    dynamic "labels" {
      for_each = local.message_metric_labels
      content {
        key         = labels.key
        value_type  = "STRING"
        description = labels.value
      }
    }
  }

  # Buckets from 1 ms, each 1.5 times as wide as the one before: the last finite one ends at
  # 1.5^33 ms (about 650 s), beyond the longest function timeout (540 s).
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 33
      growth_factor      = 1.5
      scale              = 1
    }
  }

  depends_on = [google_project_service.this]
}

# Channels without monitoring notify nobody: say so at plan (a warning), rather than in silence.
check "notification_channels_need_monitoring" {
  assert {
    condition     = var.enable_monitoring || length(var.notification_channels) == 0
    error_message = "notification_channels is set but enable_monitoring is false, so no alert policy exists to notify them. Set enable_monitoring = true."
  }
}

# --- topics and consumers --------------------------------------------------------------------

module "topic" {
  source   = "./modules/pubsub_topic"
  for_each = local.topics

  project_id                 = var.project_id
  name                       = each.key
  message_retention_duration = each.value.message_retention_duration
  schema                     = lookup(var.topic_schemas, each.key, null)

  depends_on = [google_project_service.this]
}

module "consumer" {
  source   = "./modules/consumer"
  for_each = local.consumers

  project_id = var.project_id
  region     = var.region
  name       = each.key

  function = {
    entry_point     = each.value.entry_point
    runtime         = each.value.runtime
    memory          = each.value.memory
    timeout_seconds = each.value.timeout_seconds
    max_instances   = each.value.max_instances
    min_instances   = each.value.min_instances
    concurrency     = each.value.concurrency
    environment     = each.value.environment
    publishes_to    = each.value.publishes_to
    uses_store      = each.value.uses_store
  }

  subscriptions = {
    for name, s in local.subscriptions : name => {
      topic                   = s.topic
      ack_deadline_seconds    = s.ack_deadline_seconds
      max_delivery_attempts   = s.max_delivery_attempts
      minimum_backoff         = s.minimum_backoff
      maximum_backoff         = s.maximum_backoff
      filter                  = s.filter
      enable_message_ordering = s.enable_message_ordering
      dead_letter_topic       = s.dead_letter_topic
    } if s.consumer == each.key
  }

  dead_letter_topics = {
    for name, d in local.dead_letter_topics : name => {
      source_subscription = d.source_subscription
    } if d.consumer == each.key
  }

  topic_ids               = { for name, t in module.topic : name => t.id }
  source_bucket           = google_storage_bucket.sources.name
  archive_path            = "${local.package_dir}/${each.key}.zip"
  push_invoker_email      = google_service_account.push_invoker.email
  pubsub_service_agent    = local.pubsub_service_agent
  ingress_settings        = var.function_ingress_settings
  environment             = var.function_environment
  firestore_database      = local.firestore_database
  store_collection_prefix = var.store_collection_prefix
  build_service_account   = local.build_service_account

  subscription_retention_duration = var.subscription_retention_duration
  dead_letter_retention_duration  = var.dead_letter_retention_duration

  enable_tracing                   = var.enable_tracing
  enable_monitoring                = var.enable_monitoring
  notification_channels            = var.notification_channels
  oldest_unacked_age_alert_seconds = var.oldest_unacked_age_alert_seconds
  labels                           = var.labels

  # The service agent must exist before anything is granted to it, and a build must find its
  # account's role in place.
  depends_on = [
    google_project_service.this,
    google_firestore_database.this,
    google_project_service_identity.pubsub,
    google_project_iam_member.build,
  ]
}
