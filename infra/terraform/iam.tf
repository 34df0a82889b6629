# --- ECS task execution role: pull the image, write logs, fetch the injected secrets --------------
data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${local.name}-ecs-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

# AmazonECSTaskExecutionRolePolicy narrowed to this repository and these log groups, plus the secrets.
resource "aws_iam_role_policy" "execution" {
  name   = "pull-log-inject-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

locals {
  # Every secret any task definition injects (a JSON key suffix ":password::" names the same secret).
  injected_secret_arns = distinct(concat(
    values(local.app_secrets),
    var.enable_rds_proxy ? [aws_secretsmanager_secret.db_app[0].arn] : [],
  ))
}

data "aws_iam_policy_document" "execution" {
  statement {
    actions   = ["ecr:GetAuthorizationToken"] # account-wide by design; no resource-level permission
    resources = ["*"]
  }
  statement {
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [aws_ecr_repository.app.arn]
  }
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for g in aws_cloudwatch_log_group.task : "${g.arn}:*"]
  }
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = local.injected_secret_arns
  }
  statement {
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${var.region}.amazonaws.com", "ecr.${var.region}.amazonaws.com"]
    }
  }
}

# --- what the app role's tasks may call ------------------------------------------------------------
locals {
  # rds-db:connect names the database user on each instance's resource id (db-XXXX), not its name.
  db_connect_arns = [
    for id in concat([aws_db_instance.primary.resource_id], aws_db_instance.replica[*].resource_id) :
    "arn:${local.partition}:rds-db:${var.region}:${local.account_id}:dbuser:${id}/${var.db_app_role}"
  ]
}

# The database as the app role: an IAM token (rds-db:connect) or, behind RDS Proxy, the role's secret.
data "aws_iam_policy_document" "app_database" {
  dynamic "statement" {
    for_each = local.db_iam_auth ? [1] : []
    content {
      sid       = "DatabaseConnectAsAppRole"
      actions   = ["rds-db:connect"]
      resources = local.db_connect_arns
    }
  }
  dynamic "statement" {
    for_each = var.enable_rds_proxy ? [1] : []
    content {
      sid       = "DatabaseAppRoleSecret"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [aws_secretsmanager_secret.db_app[0].arn]
    }
  }
  statement {
    sid       = "DecryptSecretsAndAssets"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${var.region}.amazonaws.com", "s3.${var.region}.amazonaws.com"]
    }
  }
}

# --- web task role -----------------------------------------------------------------------------------
resource "aws_iam_role" "task" {
  name               = "${local.name}-ecs-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy" "task" {
  name   = "app"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

data "aws_iam_policy_document" "task" {
  source_policy_documents = [data.aws_iam_policy_document.app_database.json, data.aws_iam_policy_document.ledger_list.json]

  # The ops page: metrics (GetMetricData has no resource-level permissions) and alarm states.
  statement {
    sid       = "OpsReadMetrics"
    actions   = ["cloudwatch:GetMetricData"]
    resources = ["*"]
  }
  statement {
    sid       = "OpsReadAlarms"
    actions   = ["cloudwatch:DescribeAlarms"]
    resources = ["arn:${local.partition}:cloudwatch:${var.region}:${local.account_id}:alarm:*"]
  }
  # The ops page: state of this stack's database instances. The app asks with Filters
  # (db-instance-id), and IAM authorizes DescribeDBInstances with Filters against db:* rather than the
  # instances it returns, so a policy on "<name>-db*" is denied on real AWS (moto does not check IAM).
  # The call only reads metadata, in this account and region.
  statement {
    sid       = "OpsDescribeDatabases"
    actions   = ["rds:DescribeDBInstances"]
    resources = ["arn:${local.partition}:rds:${var.region}:${local.account_id}:db:*"]
  }
  # The ops page's "what changed" and per-target health. DescribeEvents and the ELBv2 Describe* calls
  # have no resource-level permissions; DescribeServices is limited to the app's service.
  statement {
    sid       = "OpsWhatChanged"
    actions   = ["rds:DescribeEvents", "elasticloadbalancing:DescribeTargetHealth", "elasticloadbalancing:DescribeTargetGroups"]
    resources = ["*"]
  }
  statement {
    sid       = "OpsDescribeService"
    actions   = ["ecs:DescribeServices"]
    resources = ["arn:${local.partition}:ecs:${var.region}:${local.account_id}:service/${aws_ecs_cluster.main.name}/${local.name}-app"]
  }
  # Static and media files: read only. The web tier never writes or deletes there (collectstatic runs at
  # build time, and nothing uploads), so a compromised web task cannot deface or delete the assets.
  statement {
    sid       = "AssetsBucket"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.assets.arn]
  }
  statement {
    sid       = "AssetsObjects"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.assets.arn}/*"]
  }
}

# --- worker task role (the worker service): the database and sending email -------------------------
resource "aws_iam_role" "worker" {
  name               = "${local.name}-ecs-worker"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy" "worker" {
  name   = "worker"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.worker.json
}

data "aws_iam_policy_document" "worker" {
  source_policy_documents = [data.aws_iam_policy_document.app_database.json, data.aws_iam_policy_document.ledger_app.json]

  # Only the worker sends (the transactional outbox): from EMAIL_FROM, through this identity and this
  # configuration set. SES authorizes a send against the identity and the configuration set it uses.
  statement {
    sid       = "SendEmailAsTheDomain"
    actions   = ["ses:SendEmail", "ses:SendRawEmail"]
    resources = [aws_sesv2_email_identity.domain.arn, aws_ses_configuration_set.main.arn]
    condition {
      test     = "StringEquals"
      variable = "ses:FromAddress"
      values   = [local.email_from]
    }
  }
}

# --- purge task role: the database only. It deletes and erases; it never sends email (no ses:Send*) ---
resource "aws_iam_role" "purge" {
  name               = "${local.name}-ecs-purge"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy" "purge" {
  name   = "purge"
  role   = aws_iam_role.purge.id
  policy = data.aws_iam_policy_document.app_database.json
}

# --- migration task role: the owner's password, which RDS manages ---------------------------------
resource "aws_iam_role" "migrate" {
  name               = "${local.name}-ecs-migrate"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy" "migrate" {
  name   = "owner-secret"
  role   = aws_iam_role.migrate.id
  policy = data.aws_iam_policy_document.migrate.json
}

data "aws_iam_policy_document" "migrate" {
  statement {
    sid       = "DatabaseOwnerSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_db_instance.primary.master_user_secret[0].secret_arn]
  }
  statement {
    sid       = "DecryptDatabaseOwnerSecret"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${var.region}.amazonaws.com"]
    }
  }
}

# --- RDS enhanced monitoring ---------------------------------------------------------------------
resource "aws_iam_role" "rds_monitoring" {
  name               = "${local.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring_assume.json
}

data "aws_iam_policy_document" "rds_monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

# The statements of AmazonRDSEnhancedMonitoringRole, scoped to this account and region.
resource "aws_iam_role_policy" "rds_monitoring" {
  name   = "enhanced-monitoring"
  role   = aws_iam_role.rds_monitoring.id
  policy = data.aws_iam_policy_document.rds_monitoring.json
}

data "aws_iam_policy_document" "rds_monitoring" {
  statement {
    actions   = ["logs:CreateLogGroup", "logs:PutRetentionPolicy"]
    resources = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:RDS*"]
  }
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams", "logs:GetLogEvents"]
    resources = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:RDS*:log-stream:*"]
  }
}

# --- RDS Proxy: reads the app role's secret to log in on the app's behalf -------------------------
resource "aws_iam_role" "proxy" {
  count              = var.enable_rds_proxy ? 1 : 0
  name               = "${local.name}-rds-proxy"
  assume_role_policy = data.aws_iam_policy_document.proxy_assume.json
}

data "aws_iam_policy_document" "proxy_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "proxy" {
  count  = var.enable_rds_proxy ? 1 : 0
  name   = "read-db-secret"
  role   = aws_iam_role.proxy[0].id
  policy = data.aws_iam_policy_document.proxy[0].json
}

data "aws_iam_policy_document" "proxy" {
  count = var.enable_rds_proxy ? 1 : 0
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.db_app[0].arn]
  }
  statement {
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${var.region}.amazonaws.com"]
    }
  }
}
