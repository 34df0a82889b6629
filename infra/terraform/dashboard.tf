# The same metrics as the app's ops page, one widget per question an operator asks.
locals {
  alb   = aws_lb.main.arn_suffix
  tg    = aws_lb_target_group.app.arn_suffix
  graph = { view = "timeSeries", stacked = false, region = var.region, period = 60 }

  replica_lag_ids = coalescelist(aws_db_instance.replica[*].identifier, [aws_db_instance.primary.identifier])

  dashboard_widgets = [
    { title = "Requests", metrics = [["AWS/ApplicationELB", "RequestCount", "LoadBalancer", local.alb, { stat = "Sum" }]] },
    { title = "Target response time (s)", metrics = [
      ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", local.alb, { stat = "p50", label = "p50" }],
      ["...", { stat = "p99", label = "p99" }],
    ] },
    { title = "5XX", metrics = [
      ["AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "LoadBalancer", local.alb, { stat = "Sum", label = "ALB" }],
      ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", local.alb, { stat = "Sum", label = "app" }],
    ] },
    { title = "Targets (/health)", metrics = [
      ["AWS/ApplicationELB", "HealthyHostCount", "TargetGroup", local.tg, "LoadBalancer", local.alb, { stat = "Minimum" }],
      ["AWS/ApplicationELB", "UnHealthyHostCount", "TargetGroup", local.tg, "LoadBalancer", local.alb, { stat = "Maximum" }],
    ] },
    [{ title = "App CPU / memory (%)", metrics = [
      ["AWS/ECS", "CPUUtilization", "ClusterName", aws_ecs_cluster.main.name, "ServiceName", "${local.name}-app", { stat = "Average" }],
      ["AWS/ECS", "MemoryUtilization", "ClusterName", aws_ecs_cluster.main.name, "ServiceName", "${local.name}-app", { stat = "Average" }],
      ] }, { title = "Web hosts CPU (%)", metrics = [ # compute = ec2
      ["AWS/EC2", "CPUUtilization", "AutoScalingGroupName", local.asg_name, { stat = "Average" }],
    ] }][local.ec2 ? 1 : 0],
    { title = "RDS CPU (%)", metrics = [for id in local.db_ids : ["AWS/RDS", "CPUUtilization", "DBInstanceIdentifier", id]] },
    { title = "RDS connections", metrics = [for id in local.db_ids : ["AWS/RDS", "DatabaseConnections", "DBInstanceIdentifier", id]] },
    { title = "RDS free storage (bytes)", metrics = [for id in local.db_ids : ["AWS/RDS", "FreeStorageSpace", "DBInstanceIdentifier", id, { stat = "Minimum" }]] },
    { title = "RDS freeable memory (bytes)", metrics = [for id in local.db_ids : ["AWS/RDS", "FreeableMemory", "DBInstanceIdentifier", id, { stat = "Minimum" }]] },
    # Without replicas the widget stays, showing the primary's (absent) lag rather than a hole.
    { title = "Replica lag (s)", metrics = [for id in local.replica_lag_ids : ["AWS/RDS", "ReplicaLag", "DBInstanceIdentifier", id, { stat = "Maximum" }]] },
    { title = "RDS read / write latency (s)", metrics = flatten([for id in local.db_ids : [
      ["AWS/RDS", "ReadLatency", "DBInstanceIdentifier", id],
      ["AWS/RDS", "WriteLatency", "DBInstanceIdentifier", id],
    ]]) },
  ]
  cache_widgets = [for _ in range(var.enable_elasticache ? 1 : 0) :
    { title = "Redis engine CPU / memory (%)", metrics = flatten([for id in local.cache_member_ids : [
      ["AWS/ElastiCache", "EngineCPUUtilization", "CacheClusterId", id],
      ["AWS/ElastiCache", "DatabaseMemoryUsagePercentage", "CacheClusterId", id],
    ]]) }
  ]
  widgets = concat(local.dashboard_widgets, local.cache_widgets)
}

resource "aws_cloudwatch_dashboard" "main" {
  dashboard_name = local.name
  dashboard_body = jsonencode({
    widgets = concat(
      [for i, w in local.widgets : {
        type       = "metric"
        x          = (i % 3) * 8
        y          = floor(i / 3) * 6
        width      = 8
        height     = 6
        properties = merge(local.graph, { title = w.title, metrics = w.metrics })
      }],
      [{
        type       = "alarm"
        x          = 0
        y          = ceil(length(local.widgets) / 3) * 6
        width      = 24
        height     = 4
        properties = { title = "Alarms", alarms = [for a in aws_cloudwatch_metric_alarm.main : a.arn] }
      }],
    )
  })
}
