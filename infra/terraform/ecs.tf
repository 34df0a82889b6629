# The app on ECS Fargate, one image from ECR in four roles:
#   web      service behind the ALB: an nginx sidecar ("proxy", image <tag>-proxy) on port 8000 buffers
#            each request and response, so slow clients never hold a gunicorn thread; gunicorn ("app")
#            listens on 127.0.0.1:8001 inside the task only
#   worker   service without a load balancer: python manage.py worker (the email outbox)
#   purge    one-off, daily on an EventBridge Scheduler schedule (scheduler.tf): python manage.py purge
#   migrate  one-off by hand before a release (infra/README.md): migrate, then setup_db_roles, as the owner
# Web, worker and purge connect as the app role (var.db_app_role, DML only); only migrate is the owner.
locals {
  db_host = var.enable_rds_proxy ? aws_db_proxy.main[0].endpoint : aws_db_instance.primary.address
  # IAM tokens for the app role, except behind RDS Proxy, which logs in with a password (see rds.tf).
  db_iam_auth = !var.enable_rds_proxy

  # gunicorn's rule of thumb, 2 x cores + 1, for the vCPUs of the task (1024 units = 1 vCPU), at least 2
  # so one slow request never leaves the task without a free process: 0.5 vCPU -> 2, 1 -> 3, 2 -> 5.
  web_concurrency = max(2, floor(var.app_cpu * 2 / 1024) + 1)

  # What web, worker and purge all read from their environment (secrets below).
  app_environment = merge(
    {
      DATABASE_URL          = "postgres://${var.db_app_role}@${local.db_host}:5432/${var.db_name}"
      DATABASE_REPLICA_URLS = join(",", [for r in aws_db_instance.replica : "postgres://${var.db_app_role}@${r.address}:5432/${var.db_name}"])
      DATABASE_IAM_AUTH     = local.db_iam_auth ? "1" : "0"
      DATABASE_SSLMODE      = "verify-full"
      DATABASE_SSLROOTCERT  = var.db_ca_bundle_path
      ALLOWED_HOSTS         = var.domain_name
      ADMIN_URL             = var.admin_url
      TRUSTED_PROXY_COUNT   = "1" # one hop (the ALB) appends to X-Forwarded-For; the sidecar passes it on as is
      # private_ingress: API Gateway's X-Client-IP (private.tf); no X-Forwarded-For entry is the client's there.
      CLIENT_IP_HEADER        = local.private ? local.client_ip_header : ""
      AWS_REGION              = var.region
      AWS_STORAGE_BUCKET_NAME = aws_s3_bucket.assets.id
      EMAIL_PROVIDER          = "ses"
      EMAIL_FROM              = local.email_from
      SES_CONFIGURATION_SET   = aws_ses_configuration_set.main.name
      SES_EVENTS_TOPIC_ARN    = aws_sns_topic.ses_events.arn
      PUBLIC_BASE_URL         = local.public_base_url
      LOG_RETENTION_DAYS      = tostring(var.log_retention_days) # stated on the privacy page
      # The erasure ledger (ledger.tf): entries locked as long as backups live.
      ERASURE_LEDGER_BUCKET      = aws_s3_bucket.ledger.id
      ERASURE_LEDGER_RETAIN_DAYS = tostring(var.backup_retention_days)
      OPS_ALB                    = aws_lb.main.arn_suffix
      OPS_TARGET_GROUP           = aws_lb_target_group.app.arn_suffix
      # Fargate: no Auto Scaling group or instances, CPU per service. EC2: CPU per group, no web service.
      OPS_ASG           = local.ec2 ? local.asg_name : ""
      OPS_EC2_INSTANCES = "" # the group's instances change with every refresh: charted through OPS_ASG
      OPS_ECS_CLUSTER   = aws_ecs_cluster.main.name
      OPS_ECS_SERVICE   = local.ec2 ? "" : "${local.name}-app"
      OPS_RDS_INSTANCES = join(",", concat([aws_db_instance.primary.identifier], aws_db_instance.replica[*].identifier))
      OPS_CACHE_CLUSTER = local.cache_cluster_id
      OPS_RDS_PROXY     = var.enable_rds_proxy ? aws_db_proxy.main[0].name : ""
      OPS_ALARM_PREFIX  = "${local.name}-"                          # the ops page lists this stack's alarms only
      OPS_LOG_GROUP     = aws_cloudwatch_log_group.task["app"].name # its Logs Insights links (EC2 hosts log there too)
      SLO_AVAILABILITY  = tostring(var.slo_availability)            # the same objective as the burn-rate alarms
      SLO_LATENCY_MS    = tostring(var.slo_latency_ms)
      REPLICA_MAX_LAG   = tostring(var.replica_max_lag)
      # RDS Proxy pins a client session to one database connection once it sees a prepared statement.
      DATABASE_SERVER_BINDING = var.enable_rds_proxy ? "0" : "1"
    },
    # Behind the proxy the app role's password comes from its secret; with IAM auth there is none.
    var.enable_rds_proxy ? { DATABASE_SECRET_ARN = aws_secretsmanager_secret.db_app[0].arn } : {},
  )
  # No REDIS_URL at all without ElastiCache: ECS cannot start a task whose secret has no value.
  app_secrets = merge(
    {
      SECRET_KEY          = aws_secretsmanager_secret.secret_key.arn
      ERASURE_LEDGER_KEY  = aws_secretsmanager_secret.ledger_key.arn
      WEBHOOK_SECRET_KEYS = aws_secretsmanager_secret.webhook_secret_keys.arn
    },
    var.enable_elasticache ? { REDIS_URL = aws_secretsmanager_secret.redis_url[0].arn } : {},
  )

  task_environment = {
    web = merge(local.app_environment, {
      PORT             = "8001"      # behind the sidecar, which listens on 8000
      HOST             = "127.0.0.1" # reachable from the sidecar only, never from the VPC
      WEB_CONCURRENCY  = tostring(local.web_concurrency)
      GUNICORN_THREADS = tostring(var.gunicorn_threads)
    })
    worker = local.app_environment
    purge  = local.app_environment
    # The owner: straight to the primary (DDL through a proxy would pin its connections anyway), with the
    # password RDS manages; setup_db_roles then (re)creates the app role.
    migrate = merge(
      local.app_environment,
      {
        DATABASE_URL          = "postgres://${var.db_username}@${aws_db_instance.primary.address}:5432/${var.db_name}"
        DATABASE_REPLICA_URLS = ""
        DATABASE_IAM_AUTH     = "0"
        DATABASE_SECRET_ARN   = aws_db_instance.primary.master_user_secret[0].secret_arn
        DATABASE_APP_ROLE     = var.db_app_role
      },
    )
  }
  task_secrets = {
    web    = local.app_secrets
    worker = local.app_secrets
    purge  = local.app_secrets
    # Behind the proxy setup_db_roles sets the app role's password from its secret (JSON key "password").
    migrate = merge(
      local.app_secrets,
      var.enable_rds_proxy ? { DATABASE_APP_PASSWORD = "${aws_secretsmanager_secret.db_app[0].arn}:password::" } : {},
    )
  }
  task_command = {
    worker  = ["python", "manage.py", "worker"]
    purge   = ["python", "manage.py", "purge"]
    migrate = ["sh", "-c", "python manage.py migrate --noinput && python manage.py setup_db_roles"]
  }

  image = "${aws_ecr_repository.app.repository_url}:${var.image_tag}"
  # What every container running the app image shares: a read-only root, a writable /tmp.
  app_runtime = {
    essential              = true
    readonlyRootFilesystem = true
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
  }
  # How each container runs, all but its image, environment, secrets and logs: the task definitions below
  # and the image test (tests/deploy/, through the output `containers`) read this one map. The EC2 boot
  # script (ec2.tf) starts the web task's two containers with the same mounts and ports.
  containers = merge(
    {
      app = merge(local.app_runtime, {
        stopTimeout = 30 # SIGTERM, then gunicorn's 25 s graceful timeout, then SIGKILL
        # Liveness only: a database outage must not make ECS kill every task. Straight to gunicorn.
        healthCheck = {
          command     = ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8001/health', timeout=3)"]
          interval    = 15
          timeout     = 5
          retries     = 3
          startPeriod = 30
        }
      })
      # The ALB's target. It starts once gunicorn is healthy and, depending on it, is stopped before it,
      # so a stopping task drains through nginx. Its own health is what the ALB's /health check (through
      # nginx to gunicorn) sees.
      proxy = {
        essential              = true
        readonlyRootFilesystem = true
        portMappings           = [{ containerPort = 8000, protocol = "tcp" }]
        dependsOn              = [{ containerName = "app", condition = "HEALTHY" }]
        mountPoints = [
          { sourceVolume = "proxy-tmp", containerPath = "/tmp", readOnly = false },
          { sourceVolume = "proxy-cache", containerPath = "/var/cache/nginx", readOnly = false },
        ]
        stopTimeout = 30
      }
    },
    # The worker and the one-offs: their own command, no port. The worker finishes the task in hand on
    # SIGTERM (an email send: seconds); 60 s, then SIGKILL.
    { for role, command in local.task_command : role => merge(local.app_runtime, { command = command, stopTimeout = 60 }) },
  )
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

# One log group per role; all with the bounded retention the privacy page states, under the stack's key.
resource "aws_cloudwatch_log_group" "task" {
  #checkov:skip=CKV_AWS_338:retention is bounded on purpose (log_retention_days, stated on the privacy page)
  for_each          = toset(["app", "proxy", "worker", "jobs"])
  name              = "/${local.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

locals {
  log_options = {
    for role, group in { app = "app", proxy = "proxy", worker = "worker", purge = "jobs", migrate = "jobs" } : role => {
      logDriver              = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.task[group].name
        awslogs-region        = var.region
        awslogs-stream-prefix = role
      }
    }
  }
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

  # Writable scratch space; every root filesystem stays read-only. gunicorn keeps its worker heartbeat
  # files in /tmp; nginx its pid file and the bodies it buffers to disk (deploy/nginx.conf).
  volume {
    name = "tmp"
  }
  volume {
    name = "proxy-tmp"
  }
  volume {
    name = "proxy-cache"
  }

  container_definitions = jsonencode([
    merge(local.containers.app, {
      name             = "app"
      image            = local.image
      environment      = [for k in sort(keys(local.task_environment.web)) : { name = k, value = local.task_environment.web[k] }]
      secrets          = [for k in sort(keys(local.task_secrets.web)) : { name = k, valueFrom = local.task_secrets.web[k] }]
      logConfiguration = local.log_options.app
    }),
    merge(local.containers.proxy, {
      name             = "proxy"
      image            = "${local.image}-proxy"
      logConfiguration = local.log_options.proxy
    }),
  ])
}

# The worker and the one-offs: the same image, one container, its own command, no port.
resource "aws_ecs_task_definition" "job" {
  for_each                 = local.task_command
  family                   = "${local.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.worker_cpu
  memory                   = var.worker_memory
  execution_role_arn       = aws_iam_role.execution.arn
  # The purge deletes and erases but never sends: its own role, without the worker's ses:Send* (iam.tf).
  task_role_arn = lookup({ migrate = aws_iam_role.migrate.arn, purge = aws_iam_role.purge.arn }, each.key, aws_iam_role.worker.arn)

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([merge(local.containers[each.key], {
    name             = each.key
    image            = local.image
    environment      = [for k in sort(keys(local.task_environment[each.key])) : { name = k, value = local.task_environment[each.key][k] }]
    secrets          = [for k in sort(keys(local.task_secrets[each.key])) : { name = k, valueFrom = local.task_secrets[each.key][k] }]
    logConfiguration = local.log_options[each.key]
  })])
}

resource "aws_ecs_service" "app" {
  count                              = local.ecs_web ? 1 : 0 # compute = ec2: the hosts of ec2.tf instead
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
    container_name   = "proxy" # the nginx sidecar; gunicorn is not reachable from outside the task
    container_port   = 8000
  }

  lifecycle {
    ignore_changes = [desired_count] # owned by auto scaling after the first apply
  }

  depends_on = [aws_lb_listener.https]
}

# The queue worker: no load balancer, no port; one task by default (the outbox is claimed row by row,
# so more tasks only add throughput). A deploy starts the new task before stopping the old one.
resource "aws_ecs_service" "worker" {
  name                               = "${local.name}-worker"
  cluster                            = aws_ecs_cluster.main.id
  task_definition                    = aws_ecs_task_definition.job["worker"].arn
  desired_count                      = var.worker_count
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  propagate_tags                     = "SERVICE"
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  availability_zone_rebalancing      = "ENABLED"

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = aws_subnet.app[*].id
    security_groups  = [aws_security_group.app.id]
    assign_public_ip = false
  }
}

# --- auto scaling: CPU and requests per task, whichever asks for more ----------------------------
resource "aws_appautoscaling_target" "app" {
  count              = var.enable_autoscaling && local.ecs_web ? 1 : 0
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.app[0].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.app_min_count
  max_capacity       = var.app_max_count
}

resource "aws_appautoscaling_policy" "cpu" {
  count              = length(aws_appautoscaling_target.app)
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
  count              = length(aws_appautoscaling_target.app)
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
