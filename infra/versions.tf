terraform {
  # optional() defaults and startswith() need 1.3; 1.5 is the project's floor, 2.0 unknown.
  required_version = ">= 1.5, < 2.0"

  required_providers {
    # 6.x and 7.x: every argument used here exists in both (tests/test_infra_schema.py checks
    # them against the schemas of 6.1.0 and 7.46.1, extracted from the provider's CDK bindings).
    # The function archives are built by `pubsub-kit package`, not by hashicorp/archive.
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
    # Only for google_project_service_identity (the Pub/Sub service agent), which the GA provider
    # lacks; same range as google (tests/test_infra_schema.py checks both ends of each).
    google-beta = {
      source  = "hashicorp/google-beta"
      version = ">= 6.0, < 8.0"
    }
  }
}
