# Secrets the app receives through ECS `secrets` (never plain environment values):
#   SECRET_KEY  generated once; the value is write-only, so it never enters the Terraform state
#   REDIS_URL   rediss://:<auth token>@<primary endpoint>:6379/0, built from the token below
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

# ElastiCache needs the token itself in its API call, so this one does live in the (encrypted) state.
# Regenerated values from the data source are ignored after the first apply.
data "aws_secretsmanager_random_password" "redis" {
  password_length     = 64
  exclude_punctuation = true # the token may not contain @, " or /
}

resource "aws_secretsmanager_secret" "redis_auth" {
  #checkov:skip=CKV2_AWS_57:rotating the token needs a coordinated ElastiCache ROTATE; done by hand
  name                    = "${local.name}/redis-auth-token"
  description             = "ElastiCache Redis AUTH token"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = var.deletion_protection ? 30 : 0
}

resource "aws_secretsmanager_secret_version" "redis_auth" {
  secret_id     = aws_secretsmanager_secret.redis_auth.id
  secret_string = data.aws_secretsmanager_random_password.redis.random_password
  lifecycle {
    ignore_changes = [secret_string]
  }
}

resource "aws_secretsmanager_secret" "redis_url" {
  #checkov:skip=CKV2_AWS_57:derived from the AUTH token above; rewritten whenever that changes
  name                    = "${local.name}/redis-url"
  description             = "REDIS_URL for the app, with the AUTH token"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = var.deletion_protection ? 30 : 0
}

resource "aws_secretsmanager_secret_version" "redis_url" {
  count     = var.enable_elasticache ? 1 : 0
  secret_id = aws_secretsmanager_secret.redis_url.id
  secret_string = format(
    "rediss://:%s@%s:6379/0",
    urlencode(aws_secretsmanager_secret_version.redis_auth.secret_string),
    local.redis_host,
  )
}
