terraform {
  # No provider: this module only derives settings and texts, so it can be evaluated offline
  # (tests/test_infra_observability.py applies it in a scratch directory for every consumer).
  required_version = ">= 1.5, < 2.0"
}
