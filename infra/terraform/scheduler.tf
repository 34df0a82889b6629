# The retention purge (python manage.py purge), daily: EventBridge Scheduler runs the purge task
# definition on the cluster. The command is idempotent and safe twice at once, so the scheduler's
# retries (and a manual run) can never do harm. The schedule exists DISABLED until var.enable_purge_schedule
# is set true on purpose (after a dry run's counts were read: docs/notes/sec-queue.md); the command itself
# never deletes a signup from before double opt-in and refuses a run over its ceiling (users/retention.py).
resource "aws_scheduler_schedule" "purge" {
  #checkov:skip=CKV_AWS_297:a customer managed key would encrypt the target's Input only, and this schedule has none (the task definition carries the command)
  name                         = "${local.name}-purge"
  description                  = "Retention purge: python manage.py purge"
  schedule_expression          = var.purge_schedule
  schedule_expression_timezone = "UTC"
  state                        = var.enable_purge_schedule ? "ENABLED" : "DISABLED"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_ecs_cluster.main.arn
    role_arn = aws_iam_role.scheduler.arn

    ecs_parameters {
      task_definition_arn = aws_ecs_task_definition.job["purge"].arn
      launch_type         = "FARGATE"
      platform_version    = "LATEST"
      task_count          = 1
      network_configuration {
        subnets          = aws_subnet.app[*].id
        security_groups  = [aws_security_group.app.id]
        assign_public_ip = false
      }
    }

    retry_policy {
      maximum_event_age_in_seconds = 3600 # a run that cannot start within an hour waits for tomorrow's
      maximum_retry_attempts       = 3
    }
  }
}

# The scheduler may start this one task definition on this cluster, and hand ECS exactly the two roles
# that task needs; nothing else.
resource "aws_iam_role" "scheduler" {
  name               = "${local.name}-scheduler"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
}

data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "run-purge"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "RunThePurgeTask"
    actions   = ["ecs:RunTask"]
    resources = [aws_ecs_task_definition.job["purge"].arn]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.main.arn]
    }
  }
  statement {
    sid       = "PassThePurgeTaskRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.execution.arn, aws_iam_role.purge.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}
