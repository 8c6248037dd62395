variable "consumer" {
  description = "Consumer name from infra/topology.json: snake_case, also the function's folder and entry point (e.g. \"timeline_enrichment\")."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]*$", var.consumer))
    error_message = "The consumer name must be snake_case like \"audit_log\" (lower-case letters, digits and underscores, starting with a letter)."
  }
}

variable "service_account_prefix" {
  description = "Prefix of the consumer's service account id; the rest is the consumer name with \"_\" replaced by \"-\"."
  type        = string
  default     = "fn-"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,9}$", var.service_account_prefix))
    error_message = "The service account prefix must be 1-10 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}
