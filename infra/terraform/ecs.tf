# The app on ECS Fargate: image from ECR, tasks in the private app subnets behind the ALB.
locals {
  db_host = var.enable_rds_proxy ? aws_db_proxy.main[0].endpoint : aws_db_instance.primary.address

  # Everything the app reads from its environment, except the two secrets injected below.
  app_environment = {
    PORT                    = "8000"
    DATABASE_URL            = "postgres://${var.db_username}@${local.db_host}:5432/${var.db_name}"
    DATABASE_REPLICA_URLS   = join(",", [for r in aws_db_instance.replica : "postgres://${var.db_username}@${r.address}:5432/${var.db_name}"])
    DATABASE_SECRET_ARN     = aws_db_instance.primary.master_user_secret[0].secret_arn
    DATABASE_SSLMODE        = "verify-full"
    DATABASE_SSLROOTCERT    = var.db_ca_bundle_path
    ALLOWED_HOSTS           = var.domain_name
    ADMIN_URL               = var.admin_url
    TRUSTED_PROXY_COUNT     = "1" # exactly one hop (the ALB) appends to X-Forwarded-For
    AWS_REGION              = var.region
    AWS_STORAGE_BUCKET_NAME = aws_s3_bucket.assets.id
    OPS_ALB                 = aws_lb.main.arn_suffix
    OPS_TARGET_GROUP        = aws_lb_target_group.app.arn_suffix
    OPS_ASG                 = "" # Fargate: no Auto Scaling group and no EC2 instances; CPU is per service
    OPS_EC2_INSTANCES       = ""
    OPS_ECS_CLUSTER         = aws_ecs_cluster.main.name
    OPS_ECS_SERVICE         = "${local.name}-app"
    OPS_RDS_INSTANCES       = join(",", concat([aws_db_instance.primary.identifier], aws_db_instance.replica[*].identifier))
    OPS_CACHE_CLUSTER       = local.cache_cluster_id
    OPS_RDS_PROXY           = var.enable_rds_proxy ? aws_db_proxy.main[0].name : ""
    OPS_ALARM_PREFIX        = "${local.name}-" # the ops page lists this stack's alarms only
    REPLICA_MAX_LAG         = tostring(var.replica_max_lag)
  }
  app_secrets = {
    SECRET_KEY = aws_secretsmanager_secret.secret_key.arn
    REDIS_URL  = aws_secretsmanager_secret.redis_url.arn
  }
}

resource "aws_ecr_repository" "app" {
  name                 = local.name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = !var.deletion_protection
  image_scanning_configuration {
    scan_on_push = true
  }
  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.main.arn
  }
}

resource "aws_ecr_lifecycle_policy" "app" {
  repository = aws_ecr_repository.app.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last 30 images"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 30 }
      action       = { type = "expire" }
    }]
  })
}

resource "aws_ecs_cluster" "main" {
  name = local.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_cloudwatch_log_group" "app" {
  name              = "/${local.name}/app"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_ecs_task_definition" "app" {
  family                   = "${local.name}-app"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.app_cpu
  memory                   = var.app_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # A writable /tmp for gunicorn's worker heartbeat files; the root filesystem stays read-only.
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name                   = "app"
    image                  = "${aws_ecr_repository.app.repository_url}:${var.image_tag}"
    essential              = true
    readonlyRootFilesystem = true
    portMappings           = [{ containerPort = 8000, protocol = "tcp" }]
    environment            = [for k in sort(keys(local.app_environment)) : { name = k, value = local.app_environment[k] }]
    secrets                = [for k in sort(keys(local.app_secrets)) : { name = k, valueFrom = local.app_secrets[k] }]
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    stopTimeout            = 30 # SIGTERM, then gunicorn's 25 s graceful timeout, then SIGKILL
    # Liveness only: a database outage must not make ECS kill every task (readiness is the ALB's job).
    healthCheck = {
      command     = ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=3)"]
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 30
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.app.name
        awslogs-region        = var.region
        awslogs-stream-prefix = "app"
      }
    }
  }])
}

resource "aws_ecs_service" "app" {
  name                               = "${local.name}-app"
  cluster                            = aws_ecs_cluster.main.id
  task_definition                    = aws_ecs_task_definition.app.arn
  desired_count                      = var.app_min_count
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  health_check_grace_period_seconds  = 60
  propagate_tags                     = "SERVICE"
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  # After an AZ outage ECS moves tasks back until each AZ runs its share again (the provider's default
  # would be DISABLED, leaving every task in the AZ that survived).
  availability_zone_rebalancing = "ENABLED"

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = aws_subnet.app[*].id
    security_groups  = [aws_security_group.app.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.app.arn
    container_name   = "app"
    container_port   = 8000
  }

  lifecycle {
    ignore_changes = [desired_count] # owned by auto scaling after the first apply
  }

  depends_on = [aws_lb_listener.https]
}

# --- auto scaling: CPU and requests per task, whichever asks for more ----------------------------
resource "aws_appautoscaling_target" "app" {
  count              = var.enable_autoscaling ? 1 : 0
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.app.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.app_min_count
  max_capacity       = var.app_max_count
}

resource "aws_appautoscaling_policy" "cpu" {
  count              = var.enable_autoscaling ? 1 : 0
  name               = "${local.name}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.app[0].service_namespace
  resource_id        = aws_appautoscaling_target.app[0].resource_id
  scalable_dimension = aws_appautoscaling_target.app[0].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.scale_cpu_target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "requests" {
  count              = var.enable_autoscaling ? 1 : 0
  name               = "${local.name}-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.app[0].service_namespace
  resource_id        = aws_appautoscaling_target.app[0].resource_id
  scalable_dimension = aws_appautoscaling_target.app[0].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.scale_requests_per_target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${aws_lb.main.arn_suffix}/${aws_lb_target_group.app.arn_suffix}"
    }
  }
}
