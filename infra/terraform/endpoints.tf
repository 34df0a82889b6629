# private_ingress = true: no NAT, so every AWS API the stack's compute calls is a VPC endpoint in the app
# subnets, with private DNS (the SDKs' default host names resolve to it). Each, and who calls it:
#   ecr.api, ecr.dkr  image pulls (ECS agent / Docker on the EC2 hosts); the layers come from S3
#   s3 (gateway)      ECR layers, the assets bucket (django-storages), and on EC2 the Amazon Linux
#                     package repositories (dnf install docker)
#   logs              container logs (awslogs driver)
#   secretsmanager    injected secrets (ECS; the EC2 hosts' boot script), DATABASE_SECRET_ARN behind RDS Proxy
#   monitoring        the ops page: cloudwatch:GetMetricData, DescribeAlarms (ops/cloudwatch.py)
#   email             sending mail: django-anymail's SES backend calls the SES v2 API (email.<region>);
#                     "email-smtp" would only serve an SMTP backend (var.ses_endpoint_service)
#   sns               the webhook's signing-certificate download and SubscribeURL confirmation
#                     (users/sns.py, both on sns.<region>.amazonaws.com)
#   rds               the ops page: rds:DescribeDBInstances (ops/rds.py). IAM database tokens are signed
#                     locally and need no call
#   ssm, ssmmessages, ec2messages   compute = ec2: Session Manager and Run Command (no SSH)
# Not needed: STS and KMS (no direct calls; task and instance credentials come from the ECS agent and
# IMDS), ECS and ELBv2 (the app does not call them), ElastiCache/RDS data traffic (inside the VPC).
locals {
  endpoint_services = local.private ? concat(
    ["ecr.api", "ecr.dkr", "logs", "secretsmanager", "monitoring", var.ses_endpoint_service, "sns", "rds",
    "ecs", "elasticloadbalancing"], # the last two: the ops page's DescribeServices and DescribeTargetHealth
    local.ec2 ? ["ssm", "ssmmessages", "ec2messages"] : [],
  ) : []
}

resource "aws_security_group" "endpoints" {
  count       = local.private ? 1 : 0
  name        = "${local.name}-endpoints"
  description = "VPC interface endpoints: HTTPS from the app only"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${local.name}-endpoints" }
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_app" {
  count                        = local.private ? 1 : 0
  security_group_id            = aws_security_group.endpoints[0].id
  description                  = "HTTPS from the app (tasks and hosts)"
  referenced_security_group_id = aws_security_group.app.id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

resource "aws_vpc_security_group_egress_rule" "app_to_endpoints" {
  count                        = local.private ? 1 : 0
  security_group_id            = aws_security_group.app.id
  description                  = "HTTPS to the AWS APIs' interface endpoints"
  referenced_security_group_id = aws_security_group.endpoints[0].id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

resource "aws_vpc_security_group_egress_rule" "app_to_s3" {
  count             = local.private ? 1 : 0
  security_group_id = aws_security_group.app.id
  description       = "HTTPS to S3 through the gateway endpoint (its prefix list)"
  prefix_list_id    = aws_vpc_endpoint.s3[0].prefix_list_id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_endpoint" "interface" {
  for_each            = toset(local.endpoint_services)
  vpc_id              = aws_vpc.main.id
  service_name        = "com.amazonaws.${var.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  private_dns_enabled = true
  subnet_ids          = aws_subnet.app[*].id
  security_group_ids  = [aws_security_group.endpoints[0].id]
  tags                = { Name = "${local.name}-${each.key}" }
}

resource "aws_vpc_endpoint" "s3" {
  count             = local.private ? 1 : 0
  vpc_id            = aws_vpc.main.id
  service_name      = "com.amazonaws.${var.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = aws_route_table.app[*].id
  tags              = { Name = "${local.name}-s3" }
}
