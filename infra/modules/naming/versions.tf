terraform {
  # No provider: this module only derives names, so it can be evaluated offline
  # (tests/test_infra.py applies it in a scratch directory).
  required_version = ">= 1.5, < 2.0"
}
