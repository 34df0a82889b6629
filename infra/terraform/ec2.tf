# compute = "ec2": the web tier on EC2 hosts in an Auto Scaling group over the two app subnets, behind
# the same ALB target group (targets by instance, port 8000). Each host runs the web task's two
# containers with Docker, from the same ECR images, with the same environment and secrets:
#   proxy  nginx (<tag>-proxy) on port 8000, the ALB's target, buffering whole requests and responses
#   app    gunicorn on 127.0.0.1:8001, started first; nginx starts once its /health answers
# The instance profile replaces the web task role and the execution role (the same statements). No SSH:
# no key pair, no port 22; Session Manager and Run Command through the SSM agent. IMDSv2 only, one hop
# (the containers use the host's network). The worker, purge and migration stay Fargate tasks: they
# need SES or the owner's secret, which the web hosts must not hold (infra/README.md).
# A deploy is a new launch template version (image_tag): the group's instance refresh replaces the
# hosts, launching before terminating, each new one healthy on /health before an old one goes.
locals {
  ec2      = var.compute == "ec2"
  ecs_web  = !local.ec2
  asg_name = "${local.name}-web"
  ami_arch = var.cpu_architecture == "ARM64" ? "arm64" : "x86_64"
  # gunicorn's 2 x vCPUs + 1 for the host's vCPUs (t3.small: 2 -> 5).
  host_concurrency = local.ec2 ? max(2, data.aws_ec2_instance_type.web[0].default_vcpus * 2 + 1) : 0
  host_environment = merge(local.task_environment.web, { WEB_CONCURRENCY = tostring(local.host_concurrency) })

  # KEY=value lines for docker --env-file (values hold no newlines; secrets are fetched at boot).
  host_env_file = join("\n", [for k in sort(keys(local.host_environment)) : "${k}=${local.host_environment[k]}"])
  registry      = split("/", aws_ecr_repository.app.repository_url)[0]
  # The boot script (user_data.sh.tftpl); tests/deploy render it with sample values for the same variables.
  user_data_vars = {
    env_file = local.host_env_file
    # Plain secrets only (the web task's: SECRET_KEY, REDIS_URL), each a whole SecretString.
    secrets            = local.task_secrets.web
    region             = var.region
    registry           = local.registry
    image              = local.image
    app_tmpfs          = join(" ", [for m in local.containers.app.mountPoints : "--tmpfs ${m.containerPath}"])
    proxy_tmpfs        = join(" ", [for m in local.containers.proxy.mountPoints : "--tmpfs ${m.containerPath}"])
    app_stop_timeout   = local.containers.app.stopTimeout
    proxy_stop_timeout = local.containers.proxy.stopTimeout
    # gunicorn's own health URL, as the app container's health check in the task definition calls it.
    health_url      = regex("http://[^']+", join(" ", local.containers.app.healthCheck.command))
    log_opts        = "--log-driver awslogs --log-opt awslogs-region=${var.region} --log-opt awslogs-create-group=false"
    app_log_group   = aws_cloudwatch_log_group.task["app"].name
    proxy_log_group = aws_cloudwatch_log_group.task["proxy"].name
  }
  user_data = templatefile("${path.module}/user_data.sh.tftpl", local.user_data_vars)
}

data "aws_ec2_instance_type" "web" {
  count         = local.ec2 ? 1 : 0
  instance_type = var.ec2_instance_type
}

# --- instance profile: the web task role's and the execution role's statements, plus SSM -----------
data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "web_host" {
  count              = local.ec2 ? 1 : 0
  name               = "${local.name}-web-host"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

resource "aws_iam_role_policy" "web_host" {
  count  = local.ec2 ? 1 : 0
  name   = "app"
  role   = aws_iam_role.web_host[0].id
  policy = data.aws_iam_policy_document.web_host.json
}

data "aws_iam_policy_document" "web_host" {
  source_policy_documents = [data.aws_iam_policy_document.task.json, data.aws_iam_policy_document.execution.json]
}

resource "aws_iam_role_policy_attachment" "web_host_ssm" {
  count      = local.ec2 ? 1 : 0
  role       = aws_iam_role.web_host[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "web_host" {
  count = local.ec2 ? 1 : 0
  name  = "${local.name}-web-host"
  role  = aws_iam_role.web_host[0].name
}

# --- launch template and Auto Scaling group --------------------------------------------------------
resource "aws_launch_template" "web" {
  count       = local.ec2 ? 1 : 0
  name        = "${local.name}-web"
  description = "Web host: the app image ${var.image_tag} behind its nginx sidecar"
  # The current Amazon Linux 2023 AMI, resolved at launch (each instance refresh takes the newest).
  image_id               = "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${local.ami_arch}"
  instance_type          = var.ec2_instance_type
  vpc_security_group_ids = [aws_security_group.app.id]
  update_default_version = true
  user_data              = base64encode(local.user_data)

  iam_instance_profile {
    arn = aws_iam_instance_profile.web_host[0].arn
  }

  # IMDSv2 only (session tokens); one hop: the containers share the host's network namespace.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size = var.ec2_root_volume_size
      volume_type = "gp3"
      # The account's aws/ebs key: the stack's key would need a key-policy statement naming the Auto
      # Scaling service-linked role, which may not exist yet when the key is created.
      encrypted             = true
      delete_on_termination = true
    }
  }

  monitoring {
    enabled = true # 1-minute metrics: the ASG's CPU target tracking reacts within minutes
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = local.asg_name })
  }
  tag_specifications {
    resource_type = "volume"
    tags          = merge(local.tags, { Name = local.asg_name })
  }
}

resource "aws_autoscaling_group" "web" {
  count               = local.ec2 ? 1 : 0
  name                = local.asg_name
  min_size            = var.app_min_count
  max_size            = var.app_max_count
  vpc_zone_identifier = aws_subnet.app[*].id
  target_group_arns   = [aws_lb_target_group.app.arn]
  # ELB: a host that fails the target group's /health check (nothing outside the host) is replaced.
  health_check_type         = "ELB"
  health_check_grace_period = 300 # boot: install Docker, pull two images, start gunicorn
  default_instance_warmup   = 300
  capacity_rebalance        = true
  enabled_metrics           = ["GroupInServiceInstances", "GroupDesiredCapacity", "GroupPendingInstances", "GroupTerminatingInstances"]

  launch_template {
    id      = aws_launch_template.web[0].id
    version = aws_launch_template.web[0].latest_version
  }

  # A new launch template version (a release) replaces every host: new ones first, each healthy before
  # an old one is terminated; a refresh whose hosts never pass /health rolls back.
  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 100
      max_healthy_percentage = 200
      instance_warmup        = 300
      auto_rollback          = true
    }
  }

  tag {
    key                 = "Name"
    value               = local.asg_name
    propagate_at_launch = true
  }

  lifecycle {
    ignore_changes = [desired_capacity] # owned by the scaling policies
  }

  depends_on = [aws_lb_listener.https]
}

# CPU and requests per host, whichever asks for more (the same targets as the Fargate service).
resource "aws_autoscaling_policy" "cpu" {
  count                  = local.ec2 ? 1 : 0
  name                   = "${local.name}-web-cpu"
  autoscaling_group_name = aws_autoscaling_group.web[0].name
  policy_type            = "TargetTrackingScaling"
  target_tracking_configuration {
    target_value = var.scale_cpu_target
    predefined_metric_specification {
      predefined_metric_type = "ASGAverageCPUUtilization"
    }
  }
}

resource "aws_autoscaling_policy" "requests" {
  count                  = local.ec2 ? 1 : 0
  name                   = "${local.name}-web-requests"
  autoscaling_group_name = aws_autoscaling_group.web[0].name
  policy_type            = "TargetTrackingScaling"
  target_tracking_configuration {
    target_value = var.scale_requests_per_target
    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${aws_lb.main.arn_suffix}/${aws_lb_target_group.app.arn_suffix}"
    }
  }
}
