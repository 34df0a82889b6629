# Secrets the app receives through ECS `secrets` (never plain environment values):
#   SECRET_KEY  generated once; the value is write-only, so it never enters the Terraform state
#   WEBHOOK_SECRET_KEYS  likewise: the key of the webhook endpoints' secrets (rotated by hand, see below)
#   REDIS_URL   rediss://:<auth token>@<primary endpoint>:6379/0, built from the token below. Only with
#               ElastiCache: without it there is no such secret and no REDIS_URL at all (the app then
#               uses its per-process cache), because ECS cannot start a task whose secret has no value.
# The database master password is created, stored and rotated by RDS itself (rds.tf); the app reads
# that secret at run time through DATABASE_SECRET_ARN.
ephemeral "aws_secretsmanager_random_password" "secret_key" {
  password_length     = 64
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret" "secret_key" {
  #checkov:skip=CKV2_AWS_57:Django's SECRET_KEY cannot rotate on a schedule without logging everyone out
  name                    = "${local.name}/django-secret-key"
  description             = "Django SECRET_KEY"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = var.deletion_protection ? 30 : 0
}

resource "aws_secretsmanager_secret_version" "secret_key" {
  secret_id                = aws_secretsmanager_secret.secret_key.id
  secret_string_wo         = ephemeral.aws_secretsmanager_random_password.secret_key.random_password
  secret_string_wo_version = 1 # bump to store a new key
}

# WEBHOOK_SECRET_KEYS: the key that encrypts the webhook endpoints' secrets at rest (api/crypto.py), generated
# write-only, so it never enters the state. Every task gets it, the migration too (it encrypts the rows already
# there). Rotated by hand, never by bumping the version below, which would replace the key and leave every
# stored secret unreadable: store "new,old" in the secret, deploy, run `manage.py rotate_webhook_keys`, then
# store the new key alone (docs/api.md).
ephemeral "aws_secretsmanager_random_password" "webhook_secret_keys" {
  password_length     = 64
  exclude_punctuation = true # no commas: the value is a comma-separated list of keys
}

resource "aws_secretsmanager_secret" "webhook_secret_keys" {
  #checkov:skip=CKV2_AWS_57:a new key must sit beside the old one while the rows are re-encrypted; done by hand
  name                    = "${local.name}/webhook-secret-keys"
  description             = "WEBHOOK_SECRET_KEYS: keys that encrypt the webhook endpoints' secrets at rest"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = var.deletion_protection ? 30 : 0
}

resource "aws_secretsmanager_secret_version" "webhook_secret_keys" {
  secret_id                = aws_secretsmanager_secret.webhook_secret_keys.id
  secret_string_wo         = ephemeral.aws_secretsmanager_random_password.webhook_secret_keys.random_password
  secret_string_wo_version = 1
}

# ElastiCache needs the token itself in its API call, so this one does live in the (encrypted) state.
# Regenerated values from the data source are ignored after the first apply.
data "aws_secretsmanager_random_password" "redis" {
  count               = var.enable_elasticache ? 1 : 0
  password_length     = 64
  exclude_punctuation = true # the token may not contain @, " or /
}

resource "aws_secretsmanager_secret" "redis_auth" {
  #checkov:skip=CKV2_AWS_57:rotating the token needs a coordinated ElastiCache ROTATE; done by hand
  count                   = var.enable_elasticache ? 1 : 0
  name                    = "${local.name}/redis-auth-token"
  description             = "ElastiCache Redis AUTH token"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = var.deletion_protection ? 30 : 0
}

resource "aws_secretsmanager_secret_version" "redis_auth" {
  count         = var.enable_elasticache ? 1 : 0
  secret_id     = aws_secretsmanager_secret.redis_auth[0].id
  secret_string = data.aws_secretsmanager_random_password.redis[0].random_password
  lifecycle {
    ignore_changes = [secret_string]
  }
}

resource "aws_secretsmanager_secret" "redis_url" {
  #checkov:skip=CKV2_AWS_57:derived from the AUTH token above; rewritten whenever that changes
  count                   = var.enable_elasticache ? 1 : 0
  name                    = "${local.name}/redis-url"
  description             = "REDIS_URL for the app, with the AUTH token"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = var.deletion_protection ? 30 : 0
}

resource "aws_secretsmanager_secret_version" "redis_url" {
  count     = var.enable_elasticache ? 1 : 0
  secret_id = aws_secretsmanager_secret.redis_url[0].id
  secret_string = format(
    "rediss://:%s@%s:6379/0",
    urlencode(aws_secretsmanager_secret_version.redis_auth[0].secret_string),
    local.redis_host,
  )
}

# With RDS Proxy only (see rds.tf): the app role's password, JSON {"username", "password"} like the
# RDS-managed secret. Generated write-only, so it never enters the state; the proxy logs in with it,
# the app reads it (DATABASE_SECRET_ARN) and the migration task sets it (DATABASE_APP_PASSWORD).
ephemeral "aws_secretsmanager_random_password" "db_app" {
  count               = var.enable_rds_proxy ? 1 : 0
  password_length     = 40
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret" "db_app" {
  #checkov:skip=CKV2_AWS_57:rotation must run setup_db_roles' ALTER ROLE as the owner; bump secret_string_wo_version and run the migration task
  count                   = var.enable_rds_proxy ? 1 : 0
  name                    = "${local.name}/db-app-role"
  description             = "PostgreSQL login of ${var.db_app_role} (RDS Proxy mode)"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = var.deletion_protection ? 30 : 0
}

resource "aws_secretsmanager_secret_version" "db_app" {
  count     = var.enable_rds_proxy ? 1 : 0
  secret_id = aws_secretsmanager_secret.db_app[0].id
  secret_string_wo = jsonencode({
    username = var.db_app_role
    password = ephemeral.aws_secretsmanager_random_password.db_app[0].random_password
  })
  secret_string_wo_version = 1 # bump to generate a new password, then run the migration task
}
