output "function_name" {
  description = "Cloud Functions (2nd gen) function id: the consumer name with \"_\" replaced by \"-\" (also the name of its Cloud Run service)."
  value       = local.function_name

  precondition {
    condition     = can(regex("^[a-z][a-z0-9-]{2,61}[a-z0-9]$", local.function_name))
    error_message = "Consumer \"${var.consumer}\" gives the function id \"${local.function_name}\", which Cloud Functions refuses: a function id is 4-63 lower-case letters, digits and hyphens and ends with a letter or digit. Rename the consumer in the topology (at least 4 characters, not ending in \"_\")."
  }
}

output "service_account_id" {
  description = "Service account id (the part before \"@\") of the consumer's function: 6-30 lower-case letters, digits and hyphens."
  value       = local.service_account_id

  precondition {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", local.service_account_id))
    error_message = "Consumer \"${var.consumer}\" gives the service account id \"${local.service_account_id}\", which IAM refuses: 6-30 lower-case letters, digits and hyphens, ending with a letter or digit."
  }
}
