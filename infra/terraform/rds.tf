# PostgreSQL: a Multi-AZ primary in the data subnets, N read replicas, an optional RDS Proxy.
resource "aws_db_subnet_group" "main" {
  name       = "${local.name}-db"
  subnet_ids = aws_subnet.data[*].id
}

resource "aws_db_parameter_group" "main" {
  name        = "${local.name}-postgres${split(".", var.db_engine_version)[0]}"
  family      = "postgres${split(".", var.db_engine_version)[0]}"
  description = "${local.name}: TLS only; no statement text or parameters in the logs"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  # PostgreSQL's log goes to CloudWatch, so nothing that can carry a person's data may be written to it.
  # A duplicate signup's unique violation, for example, would otherwise log the INSERT with the name,
  # email, phone and IP (STATEMENT) and "Key (email)=(...) already exists" (DETAIL).
  parameter {
    name  = "log_error_verbosity"
    value = "terse" # no DETAIL, HINT, QUERY or CONTEXT lines: an error is its message only
  }
  parameter {
    name  = "log_min_error_statement"
    value = "panic" # the statement that raised an error is not logged (only for a PANIC, i.e. never)
  }
  parameter {
    name  = "log_statement"
    value = "none" # no statement is logged for its kind (ddl/mod/all)
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "-1" # no slow-statement logging (its text and bind parameters); Performance Insights covers slow SQL
  }
  parameter {
    name  = "log_parameter_max_length"
    value = "0" # should a statement be logged after all, its bind parameters are not
  }
  parameter {
    name  = "log_parameter_max_length_on_error"
    value = "0" # nor in error reports (0 is PostgreSQL's default; stated so that no one turns it on by accident)
  }
  # Who logs in, as which role, from which task: worth keeping for an audit of the owner role, and it
  # holds no personal data (the clients are tasks and the proxy, not people).
  parameter {
    name  = "log_connections"
    value = "1"
  }
  # Replicas answer long reads without cancelling them for replay, at the cost of some lag (alarmed).
  parameter {
    name  = "max_standby_streaming_delay"
    value = "30000"
  }

  lifecycle {
    create_before_destroy = true
  }
}

locals {
  # Known at plan time (from names only), so the log groups can be created before the instances.
  db_identifiers = concat(["${local.name}-db"], [for i in range(var.replica_count) : "${local.name}-db-replica-${i + 1}"])
  db_common = {
    monitoring_interval = 60
    pi_retention_days   = 7 # the free tier of Performance Insights
    log_exports         = ["postgresql", "upgrade"]
  }
}

resource "aws_db_instance" "primary" {
  identifier     = local.db_identifiers[0]
  engine         = "postgres"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class
  db_name        = var.db_name
  username       = var.db_username
  port           = 5432

  # RDS generates the password, stores it in Secrets Manager (DATABASE_SECRET_ARN) and rotates it.
  manage_master_user_password   = true
  master_user_secret_kms_key_id = aws_kms_key.main.key_id

  allocated_storage     = var.db_allocated_storage
  max_allocated_storage = var.db_max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.main.arn

  multi_az               = true
  db_subnet_group_name   = aws_db_subnet_group.main.name
  vpc_security_group_ids = [aws_security_group.db.id]
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.main.name

  iam_database_authentication_enabled = true
  auto_minor_version_upgrade          = true
  allow_major_version_upgrade         = false
  backup_retention_period             = 7
  backup_window                       = "02:00-02:30"
  maintenance_window                  = "sun:03:00-sun:04:00"
  copy_tags_to_snapshot               = true
  deletion_protection                 = var.deletion_protection
  skip_final_snapshot                 = !var.final_snapshot
  final_snapshot_identifier           = "${local.name}-db-final"

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.main.arn
  performance_insights_retention_period = local.db_common.pi_retention_days
  monitoring_interval                   = local.db_common.monitoring_interval
  monitoring_role_arn                   = aws_iam_role.rds_monitoring.arn
  enabled_cloudwatch_logs_exports       = local.db_common.log_exports

  depends_on = [aws_cloudwatch_log_group.rds]
}

# Each replica follows the primary asynchronously in its own AZ (alternating), for read traffic.
resource "aws_db_instance" "replica" {
  #checkov:skip=CKV_AWS_157:a replica is one of several readers; the app falls back to the primary
  #checkov:skip=CKV_AWS_133:backups are taken from the Multi-AZ primary; a replica is rebuilt from it
  count               = var.replica_count
  identifier          = local.db_identifiers[count.index + 1]
  replicate_source_db = aws_db_instance.primary.identifier
  instance_class      = var.db_instance_class
  availability_zone   = local.azs[(count.index + 1) % 2]

  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.main.arn
  max_allocated_storage = var.db_max_allocated_storage

  multi_az               = false
  vpc_security_group_ids = [aws_security_group.db.id]
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.main.name

  iam_database_authentication_enabled = true
  auto_minor_version_upgrade          = true
  backup_retention_period             = 0 # backups are taken from the primary
  maintenance_window                  = "sun:04:00-sun:05:00"
  copy_tags_to_snapshot               = true
  deletion_protection                 = var.deletion_protection
  skip_final_snapshot                 = true

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.main.arn
  performance_insights_retention_period = local.db_common.pi_retention_days
  monitoring_interval                   = local.db_common.monitoring_interval
  monitoring_role_arn                   = aws_iam_role.rds_monitoring.arn
  enabled_cloudwatch_logs_exports       = local.db_common.log_exports

  depends_on = [aws_cloudwatch_log_group.rds]
}

# RDS would create these on first export with no retention and no key; create them first instead, for
# the primary and for every replica (each instance exports to /aws/rds/instance/<identifier>/<log>).
resource "aws_cloudwatch_log_group" "rds" {
  #checkov:skip=CKV_AWS_338:retention is bounded on purpose (log_retention_days, stated on the privacy page)
  for_each = {
    for pair in setproduct(local.db_identifiers, local.db_common.log_exports) : "${pair[0]}/${pair[1]}" => pair
  }
  name              = "/aws/rds/instance/${each.value[0]}/${each.value[1]}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

# --- RDS Proxy (optional) ------------------------------------------------------------------------
# The proxy is for the app tasks only (migrations connect to the primary directly, as the owner), so it
# logs in as the app role with that role's own secret. IAM all the way to the database would need the
# proxy's DefaultAuthScheme=IAM_AUTH, which aws_db_proxy in provider 5.100 cannot set; and a role that
# is a member of rds_iam can no longer log in with a password. So with the proxy the app role uses a
# password everywhere (proxy and replicas alike, DATABASE_IAM_AUTH=0): Terraform generates it into
# Secrets Manager (secrets.tf), the migration task hands it to setup_db_roles, the app and the proxy read
# it from the secret. Without the proxy the app role uses IAM tokens and no password exists at all.
resource "aws_db_proxy" "main" {
  count                  = var.enable_rds_proxy ? 1 : 0
  name                   = "${local.name}-db"
  engine_family          = "POSTGRESQL"
  role_arn               = aws_iam_role.proxy[0].arn
  vpc_subnet_ids         = aws_subnet.data[*].id
  vpc_security_group_ids = [aws_security_group.proxy[0].id]
  require_tls            = true
  idle_client_timeout    = 1800

  auth {
    auth_scheme               = "SECRETS"
    secret_arn                = aws_secretsmanager_secret.db_app[0].arn
    iam_auth                  = "DISABLED"
    client_password_auth_type = "POSTGRES_SCRAM_SHA_256"
  }
}

resource "aws_db_proxy_default_target_group" "main" {
  count         = var.enable_rds_proxy ? 1 : 0
  db_proxy_name = aws_db_proxy.main[0].name
  connection_pool_config {
    max_connections_percent      = 90
    max_idle_connections_percent = 50
    connection_borrow_timeout    = 5
  }
}

resource "aws_db_proxy_target" "primary" {
  count                  = var.enable_rds_proxy ? 1 : 0
  db_proxy_name          = aws_db_proxy.main[0].name
  target_group_name      = aws_db_proxy_default_target_group.main[0].name
  db_instance_identifier = aws_db_instance.primary.identifier
}
