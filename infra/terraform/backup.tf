# Backups that are proven by restoring them (docs/operations.md, "Restore"):
#   - AWS Backup, beside RDS's own automated backups (rds.tf), takes daily snapshots and continuous backups
#     (point-in-time restore) of the primary into a vault encrypted with the stack's key, kept
#     var.backup_retention_days;
#   - a restore testing plan restores the latest recovery point into a new, throwaway instance every week
#     and deletes it after the validation window: a backup that cannot be restored shows up within a week;
#   - a failed restore (test or real) raises an alarm on the alarms topic (AWS/Backup
#     NumberOfRestoreJobsFailed), as does a failed backup job.
# moto has no backup selections or restore testing plans: the moto apply sets enable_aws_backup = false.
resource "aws_backup_vault" "main" {
  count         = var.enable_aws_backup ? 1 : 0
  name          = "${local.name}-backups"
  kms_key_arn   = aws_kms_key.main.arn
  force_destroy = !var.deletion_protection
}

resource "aws_backup_plan" "main" {
  count = var.enable_aws_backup ? 1 : 0
  name  = "${local.name}-database"

  rule {
    rule_name                = "daily-with-point-in-time"
    target_vault_name        = aws_backup_vault.main[0].name
    schedule                 = "cron(0 3 * * ? *)"
    start_window             = 60
    completion_window        = 240
    enable_continuous_backup = true # point-in-time restore from the vault, up to 35 days back
    lifecycle {
      delete_after = var.backup_retention_days
    }
  }
}

resource "aws_iam_role" "backup" {
  count              = var.enable_aws_backup ? 1 : 0
  name               = "${local.name}-backup"
  assume_role_policy = data.aws_iam_policy_document.backup_assume.json
}

data "aws_iam_policy_document" "backup_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["backup.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy_attachment" "backup" {
  for_each = var.enable_aws_backup ? toset(["AWSBackupServiceRolePolicyForBackup", "AWSBackupServiceRolePolicyForRestores"]) : toset([])

  role       = aws_iam_role.backup[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/${each.value}"
}

resource "aws_backup_selection" "database" {
  count        = var.enable_aws_backup ? 1 : 0
  name         = "${local.name}-primary"
  plan_id      = aws_backup_plan.main[0].id
  iam_role_arn = aws_iam_role.backup[0].arn
  resources    = [aws_db_instance.primary.arn]
}

# Weekly: restore the latest recovery point of the last week into a new instance in the database subnets,
# keep it for the validation window, then AWS Backup deletes it.
resource "aws_backup_restore_testing_plan" "database" {
  count                        = var.enable_aws_backup ? 1 : 0
  name                         = replace("${local.name}_restore_test", "-", "_") # letters, digits and _ only
  schedule_expression          = var.restore_test_schedule
  schedule_expression_timezone = "Etc/UTC"
  start_window_hours           = 24

  recovery_point_selection {
    algorithm             = "LATEST_WITHIN_WINDOW"
    include_vaults        = [aws_backup_vault.main[0].arn]
    recovery_point_types  = ["SNAPSHOT", "CONTINUOUS"]
    selection_window_days = 7
  }
}

resource "aws_backup_restore_testing_selection" "database" {
  count                     = var.enable_aws_backup ? 1 : 0
  name                      = "primary"
  restore_testing_plan_name = aws_backup_restore_testing_plan.database[0].name
  protected_resource_type   = "RDS"
  iam_role_arn              = aws_iam_role.backup[0].arn
  protected_resource_arns   = [aws_db_instance.primary.arn]
  validation_window_hours   = 4
  # The restored instance lands where the primary lives, unreachable from anything but the database group.
  restore_metadata_overrides = {
    dbsubnetgroupname   = aws_db_subnet_group.main.name
    vpcsecuritygroupids = jsonencode([aws_security_group.db.id])
  }
}

# A restore that fails (the weekly test or a real one) and a backup that fails page on-call.
resource "aws_cloudwatch_metric_alarm" "backup" {
  for_each = var.enable_aws_backup ? {
    restore-failed = { metric = "NumberOfRestoreJobsFailed", what = "A restore job (the weekly restore test or a real restore) failed" }
    backup-failed  = { metric = "NumberOfBackupJobsFailed", what = "A backup job of the database failed" }
  } : {}

  alarm_name          = "${local.name}-${each.key}"
  alarm_description   = "${each.value.what}: see the AWS Backup console's jobs and docs/operations.md, Restore."
  namespace           = "AWS/Backup"
  metric_name         = each.value.metric
  dimensions          = { ResourceType = "RDS" }
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}
