# Consumer names are Python identifiers (snake_case). Neither Cloud Functions (2nd gen) function
# ids ([a-z][a-z0-9-], 4-63 characters) nor service account ids ([a-z][a-z0-9-], 6-30
# characters) accept underscores, so both are derived here, in one place. Replacing "_" by "-"
# is one-to-one (consumer names contain no "-"), so two consumers never share a function.
locals {
  function_name = replace(var.consumer, "_", "-")

  sa_base = "${var.service_account_prefix}${local.function_name}"

  # Too long: keep a readable head and add a hash of the full name, so that two long names
  # sharing their first characters still get different ids (at most 21 + "-" + 8 = 30).
  service_account_id = (
    length(local.sa_base) <= 30
    ? local.sa_base
    : "${replace(substr(local.sa_base, 0, 21), "/-+$/", "")}-${substr(sha256(var.consumer), 0, 8)}"
  )
}
