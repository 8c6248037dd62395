terraform {
  # optional() defaults and startswith() need 1.3; 1.5 is the project's floor, 2.0 unknown.
  required_version = ">= 1.5, < 2.0"

  required_providers {
    # 6.x and 7.x: every argument used here exists in both (names checked against the
    # provider's sources at v6.0.0 and v7.45.0). The function archives are built by
    # `pubsub-kit package`, not by hashicorp/archive, so no other provider is needed.
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
  }
}
