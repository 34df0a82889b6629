# Alarms notify one encrypted SNS topic; the dashboard shows the metrics of the app's ops page.
resource "aws_sns_topic" "alarms" {
  name              = "${local.name}-alarms"
  kms_master_key_id = aws_kms_key.main.arn
}

resource "aws_sns_topic_policy" "alarms" {
  arn    = aws_sns_topic.alarms.arn
  policy = data.aws_iam_policy_document.alarms_topic.json
}

data "aws_iam_policy_document" "alarms_topic" {
  statement {
    sid       = "CloudWatchAlarmsPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sns_topic_subscription" "email" {
  count     = var.alarm_email == null ? 0 : 1
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

locals {
  alb_dims = { LoadBalancer = aws_lb.main.arn_suffix }
  tg_dims  = { LoadBalancer = aws_lb.main.arn_suffix, TargetGroup = aws_lb_target_group.app.arn_suffix }
  ecs_dims = { ClusterName = aws_ecs_cluster.main.name, ServiceName = "${local.name}-app" }
  asg_dims = { AutoScalingGroupName = local.asg_name }
  db_ids   = concat([aws_db_instance.primary.identifier], aws_db_instance.replica[*].identifier)
  gib      = 1024 * 1024 * 1024

  # AWS's recommended alarms (docs: "Best practice alarm recommendations"), thresholds for this size.
  # Each: namespace, metric, stat, comparison, threshold, periods of 60 s evaluated / breaching.
  alarm_list = concat(
    [
      { key = "alb-5xx", ns = "AWS/ApplicationELB", metric = "HTTPCode_ELB_5XX_Count", stat = "Sum", op = "GreaterThanThreshold", threshold = 10, eval = 5, breach = 3, dims = local.alb_dims, missing = "notBreaching", what = "ALB itself answered 5XX (no healthy target, timeouts)" },
      { key = "target-5xx", ns = "AWS/ApplicationELB", metric = "HTTPCode_Target_5XX_Count", stat = "Sum", op = "GreaterThanThreshold", threshold = 10, eval = 5, breach = 3, dims = local.tg_dims, missing = "notBreaching", what = "the app answered 5XX" },
      { key = "target-response-time", ns = "AWS/ApplicationELB", metric = "TargetResponseTime", stat = "p99", op = "GreaterThanThreshold", threshold = 2, eval = 5, breach = 3, dims = local.tg_dims, missing = "notBreaching", what = "p99 response time above 2 s" },
      { key = "unhealthy-hosts", ns = "AWS/ApplicationELB", metric = "UnHealthyHostCount", stat = "Maximum", op = "GreaterThanThreshold", threshold = 0, eval = 3, breach = 3, dims = local.tg_dims, missing = "notBreaching", what = "a task fails /health (through its nginx sidecar)" },
      { key = "healthy-hosts", ns = "AWS/ApplicationELB", metric = "HealthyHostCount", stat = "Minimum", op = "LessThanThreshold", threshold = 1, eval = 2, breach = 2, dims = local.tg_dims, missing = "breaching", what = "no task passes /health" },
    ],
    local.ec2 ? [
      { key = "asg-cpu", ns = "AWS/EC2", metric = "CPUUtilization", stat = "Average", op = "GreaterThanThreshold", threshold = 85, eval = 5, breach = 5, dims = local.asg_dims, missing = "notBreaching", what = "web hosts' CPU high although auto scaling targets ${var.scale_cpu_target}%" },
      ] : [
      { key = "ecs-cpu", ns = "AWS/ECS", metric = "CPUUtilization", stat = "Average", op = "GreaterThanThreshold", threshold = 85, eval = 5, breach = 5, dims = local.ecs_dims, missing = "notBreaching", what = "service CPU high although auto scaling targets ${var.scale_cpu_target}%" },
      { key = "ecs-memory", ns = "AWS/ECS", metric = "MemoryUtilization", stat = "Average", op = "GreaterThanThreshold", threshold = 85, eval = 5, breach = 5, dims = local.ecs_dims, missing = "notBreaching", what = "service memory high" },
    ],
    flatten([for id in local.db_ids : [
      { key = "${id}-cpu", ns = "AWS/RDS", metric = "CPUUtilization", stat = "Average", op = "GreaterThanThreshold", threshold = 80, eval = 5, breach = 5, dims = { DBInstanceIdentifier = id }, missing = "notBreaching", what = "${id} CPU above 80%" },
      { key = "${id}-connections", ns = "AWS/RDS", metric = "DatabaseConnections", stat = "Maximum", op = "GreaterThanThreshold", threshold = var.db_max_connections_alarm, eval = 5, breach = 5, dims = { DBInstanceIdentifier = id }, missing = "notBreaching", what = "${id} close to max_connections" },
      { key = "${id}-free-storage", ns = "AWS/RDS", metric = "FreeStorageSpace", stat = "Minimum", op = "LessThanThreshold", threshold = floor(var.db_allocated_storage * local.gib / 10), eval = 5, breach = 5, dims = { DBInstanceIdentifier = id }, missing = "notBreaching", what = "${id} below 10% free storage" },
      { key = "${id}-freeable-memory", ns = "AWS/RDS", metric = "FreeableMemory", stat = "Minimum", op = "LessThanThreshold", threshold = 256 * 1024 * 1024, eval = 5, breach = 5, dims = { DBInstanceIdentifier = id }, missing = "notBreaching", what = "${id} below 256 MiB freeable memory" },
      { key = "${id}-read-latency", ns = "AWS/RDS", metric = "ReadLatency", stat = "Average", op = "GreaterThanThreshold", threshold = 0.02, eval = 10, breach = 10, dims = { DBInstanceIdentifier = id }, missing = "notBreaching", what = "${id} disk reads above 20 ms" },
      { key = "${id}-write-latency", ns = "AWS/RDS", metric = "WriteLatency", stat = "Average", op = "GreaterThanThreshold", threshold = 0.02, eval = 10, breach = 10, dims = { DBInstanceIdentifier = id }, missing = "notBreaching", what = "${id} disk writes above 20 ms" },
    ]]),
    [for id in aws_db_instance.replica[*].identifier :
      { key = "${id}-replica-lag", ns = "AWS/RDS", metric = "ReplicaLag", stat = "Maximum", op = "GreaterThanThreshold", threshold = max(30, var.replica_max_lag * 3), eval = 5, breach = 5, dims = { DBInstanceIdentifier = id }, missing = "notBreaching", what = "${id} lags; the app already reads from the primary past ${var.replica_max_lag} s" }
    ],
    flatten([for id in local.cache_member_ids : [
      { key = "${id}-engine-cpu", ns = "AWS/ElastiCache", metric = "EngineCPUUtilization", stat = "Average", op = "GreaterThanThreshold", threshold = 90, eval = 5, breach = 5, dims = { CacheClusterId = id }, missing = "notBreaching", what = "${id} Redis engine CPU above 90%" },
      { key = "${id}-memory", ns = "AWS/ElastiCache", metric = "DatabaseMemoryUsagePercentage", stat = "Average", op = "GreaterThanThreshold", threshold = 80, eval = 5, breach = 5, dims = { CacheClusterId = id }, missing = "notBreaching", what = "${id} Redis memory above 80%" },
    ]]),
  )
}

resource "aws_cloudwatch_metric_alarm" "main" {
  # Keys come from variables and names only, so the set is known at plan time.
  for_each = { for a in local.alarm_list : a.key => a }

  alarm_name          = "${local.name}-${each.key}"
  alarm_description   = each.value.what
  namespace           = each.value.ns
  metric_name         = each.value.metric
  statistic           = contains(["Sum", "Average", "Minimum", "Maximum", "SampleCount"], each.value.stat) ? each.value.stat : null
  extended_statistic  = contains(["Sum", "Average", "Minimum", "Maximum", "SampleCount"], each.value.stat) ? null : each.value.stat
  comparison_operator = each.value.op
  threshold           = each.value.threshold
  period              = 60
  evaluation_periods  = each.value.eval
  datapoints_to_alarm = each.value.breach
  dimensions          = each.value.dims
  treat_missing_data  = each.value.missing
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# Error-budget burn rates (the SRE workbook's multi-window alerts), the same the ops page computes
# (ops/slo.py): burn = bad share of ALB requests over a window / (1 - SLO_AVAILABILITY). One metric-math
# alarm per window, without actions; a composite alarm pages when both windows of a rule burn:
# fast = 1 h and 5 min over 14.4x (2 % of a 30-day budget in an hour), slow = 6 h and 30 min over 6x.
# "errors" counts 5XX (the targets' and the ALB's own); "latency" counts requests slower than
# SLO_LATENCY_MS (TargetResponseTime's percentile rank over the window).
locals {
  slo_budget = format("%.6f", (100 - var.slo_availability) / 100)
  burn_windows = {
    "1h"  = { seconds = 3600, factor = 14.4 }
    "5m"  = { seconds = 300, factor = 14.4 }
    "6h"  = { seconds = 21600, factor = 6 }
    "30m" = { seconds = 1800, factor = 6 }
  }
  burn_rules = { fast = ["1h", "5m"], slow = ["6h", "30m"] }
  burn_sli = {
    errors = {
      expression = "(FILL(target, 0) + FILL(elb, 0)) / requests / ${local.slo_budget}"
      metrics    = { requests = "RequestCount", target = "HTTPCode_Target_5XX_Count", elb = "HTTPCode_ELB_5XX_Count" }
      stat       = "Sum"
    }
    latency = {
      expression = "(100 - within) / 100 / ${local.slo_budget}"
      metrics    = { within = "TargetResponseTime" }
      stat       = "PR(:${var.slo_latency_ms / 1000})"
    }
  }
  burn_alarms = merge([for sli, cfg in local.burn_sli : {
    for window, w in local.burn_windows : "${sli}-${window}" => merge(cfg, w, { sli = sli, window = window })
  }]...)
}

resource "aws_cloudwatch_metric_alarm" "burn" {
  for_each = local.burn_alarms

  alarm_name          = "${local.name}-burn-${each.key}"
  alarm_description   = "Error budget (${var.slo_availability}% ${each.value.sli}) burning over ${each.value.factor}x in the last ${each.value.window}; pages only with its rule's other window (composite)"
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.factor
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  treat_missing_data  = "notBreaching" # no requests: nothing burns

  metric_query {
    id          = "burn"
    expression  = each.value.expression
    label       = "${each.value.sli} burn rate, ${each.value.window}"
    return_data = true
  }
  dynamic "metric_query" {
    for_each = each.value.metrics
    content {
      id = metric_query.key
      metric {
        namespace   = "AWS/ApplicationELB"
        metric_name = metric_query.value
        dimensions  = local.alb_dims
        period      = each.value.seconds
        stat        = each.value.stat
      }
    }
  }
}

resource "aws_cloudwatch_composite_alarm" "burn" {
  for_each = var.enable_burn_rate_pages ? {
    for pair in setproduct(keys(local.burn_sli), keys(local.burn_rules)) : "${pair[0]}-${pair[1]}" => {
      sli = pair[0], rule = pair[1], windows = local.burn_rules[pair[1]]
    }
  } : {}

  alarm_name        = "${local.name}-${each.key}-burn"
  alarm_description = "${each.value.rule} burn of the ${var.slo_availability}% ${each.value.sli} objective: ${join(" and ", each.value.windows)} both over ${local.burn_windows[each.value.windows[0]].factor}x"
  alarm_rule        = join(" AND ", [for w in each.value.windows : "ALARM(\"${aws_cloudwatch_metric_alarm.burn["${each.value.sli}-${w}"].alarm_name}\")"])
  alarm_actions     = [aws_sns_topic.alarms.arn]
  ok_actions        = [aws_sns_topic.alarms.arn]
}

# An SES event SNS could not deliver to the webhook (its delivery policy exhausted): a bounce or complaint
# not yet applied, so we may keep mailing someone who complained. Any message in the queue alarms.
resource "aws_cloudwatch_metric_alarm" "ses_events_dead_letters" {
  alarm_name          = "${local.name}-ses-events-dead-letters"
  alarm_description   = "SES events SNS could not deliver to /webhooks/ses/ are in ${aws_sqs_queue.ses_events_dlq.name}: apply them (docs/notes/sec-queue.md)"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.ses_events_dlq.name }
  statistic           = "Maximum"
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  period              = 300
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}
