# Everything the app reads from its environment; the same values the ECS tasks receive.
output "app_environment" {
  description = "Plain environment shared by the web, worker and purge tasks (task_environment has each task's own)."
  value       = local.app_environment
}

output "app_secrets" {
  description = "Variables injected from Secrets Manager through ECS `secrets` (name => secret ARN)."
  value       = local.app_secrets
}

output "task_environment" {
  description = "Exactly the plain environment of each container running the app image: web, worker, purge, migrate."
  value       = local.task_environment
}

output "containers" {
  description = "How each container runs, all but its image, environment, secrets and logs (ecs.tf): what the image test runs."
  value       = local.containers
}

output "task_secrets" {
  description = "Exactly the injected secrets of each of those containers (name => secret ARN[:json key::])."
  value       = local.task_secrets
}

output "migrate_task" {
  description = "aws ecs run-task arguments of the one-off migration (migrate, then setup_db_roles, as the owner)."
  value = {
    cluster         = aws_ecs_cluster.main.name
    task_definition = aws_ecs_task_definition.job["migrate"].family
    subnets         = aws_subnet.app[*].id
    security_groups = [aws_security_group.app.id]
  }
}

output "log_retention_days" {
  description = "How long every log group (app, proxy, worker, WAF, RDS, flow logs) and the ALB access logs are kept: state it on the privacy page."
  value       = var.log_retention_days
}

output "ses_dns_records" {
  description = "DNS records that verify the SES domain (Easy DKIM); created in route53_zone_id when it is set."
  value = [
    for token in aws_sesv2_email_identity.domain.dkim_signing_attributes[0].tokens : {
      name  = "${token}._domainkey.${local.email_domain}"
      type  = "CNAME"
      value = "${token}.dkim.amazonses.com"
    }
  ]
}

output "DATABASE_URL" {
  description = "Primary (or RDS Proxy) URL without password; the password is in DATABASE_SECRET_ARN."
  value       = local.app_environment.DATABASE_URL
}

output "DATABASE_REPLICA_URLS" {
  description = "Comma-separated read replica URLs (empty when replica_count = 0)."
  value       = local.app_environment.DATABASE_REPLICA_URLS
}

output "DATABASE_SECRET_ARN" {
  description = "The app role's secret (RDS Proxy mode only; empty with IAM auth). The owner's secret is database_owner_secret_arn."
  value       = lookup(local.app_environment, "DATABASE_SECRET_ARN", "")
}

output "DATABASE_IAM_AUTH" {
  description = "1: the app role logs in with RDS IAM tokens (no password exists); 0 behind RDS Proxy."
  value       = local.app_environment.DATABASE_IAM_AUTH
}

output "database_owner_secret_arn" {
  description = "Secret RDS manages for the owner (master user): for the migration task only."
  value       = aws_db_instance.primary.master_user_secret[0].secret_arn
}

output "WEB_CONCURRENCY" {
  description = "gunicorn processes per web task, from app_cpu (2 x vCPUs + 1, at least 2)."
  value       = local.task_environment.web.WEB_CONCURRENCY
}

output "EMAIL_FROM" {
  value = local.app_environment.EMAIL_FROM
}

output "SES_CONFIGURATION_SET" {
  value = local.app_environment.SES_CONFIGURATION_SET
}

output "SES_EVENTS_TOPIC_ARN" {
  description = "The only SNS topic the webhook accepts (the SES event destination publishes to it)."
  value       = local.app_environment.SES_EVENTS_TOPIC_ARN
}

output "PUBLIC_BASE_URL" {
  value = local.app_environment.PUBLIC_BASE_URL
}

output "DATABASE_SSLMODE" {
  description = "libpq sslmode; RDS forces TLS (rds.force_ssl=1)."
  value       = local.app_environment.DATABASE_SSLMODE
}

output "DATABASE_SSLROOTCERT" {
  description = "Path of the RDS CA bundle inside the image."
  value       = local.app_environment.DATABASE_SSLROOTCERT
}

output "REDIS_URL_SECRET_ARN" {
  description = "REDIS_URL (rediss:// with the AUTH token) lives in this secret; ECS injects it. Empty without ElastiCache."
  value       = lookup(local.app_secrets, "REDIS_URL", "")
}

output "REDIS_HOST" {
  description = "Primary endpoint of the Redis replication group (TLS, AUTH required)."
  value       = local.redis_host
}

output "SECRET_KEY_SECRET_ARN" {
  description = "Django SECRET_KEY lives in this secret; ECS injects it."
  value       = local.app_secrets.SECRET_KEY
}

output "ALLOWED_HOSTS" {
  value = local.app_environment.ALLOWED_HOSTS
}

output "ADMIN_URL" {
  value = local.app_environment.ADMIN_URL
}

output "TRUSTED_PROXY_COUNT" {
  value = local.app_environment.TRUSTED_PROXY_COUNT
}

output "AWS_REGION" {
  value = local.app_environment.AWS_REGION
}

output "AWS_STORAGE_BUCKET_NAME" {
  value = local.app_environment.AWS_STORAGE_BUCKET_NAME
}

output "OPS_ALB" {
  description = "LoadBalancer dimension (app/<name>/<id>)."
  value       = local.app_environment.OPS_ALB
}

output "OPS_TARGET_GROUP" {
  description = "TargetGroup dimension (targetgroup/<name>/<id>)."
  value       = local.app_environment.OPS_TARGET_GROUP
}

output "OPS_ASG" {
  description = "compute = ec2: the web hosts' Auto Scaling group; empty on Fargate (see OPS_ECS_CLUSTER / OPS_ECS_SERVICE)."
  value       = local.app_environment.OPS_ASG
}

output "OPS_EC2_INSTANCES" {
  description = "Empty: on Fargate there are no instances; on EC2 they change with every refresh, so the ops page charts OPS_ASG."
  value       = local.app_environment.OPS_EC2_INSTANCES
}

output "OPS_ECS_CLUSTER" {
  value = local.app_environment.OPS_ECS_CLUSTER
}

output "OPS_ECS_SERVICE" {
  value = local.app_environment.OPS_ECS_SERVICE
}

output "OPS_RDS_INSTANCES" {
  description = "Comma-separated DB instance identifiers, primary first."
  value       = local.app_environment.OPS_RDS_INSTANCES
}

output "OPS_CACHE_CLUSTER" {
  description = "CacheClusterId dimension of the first Redis member."
  value       = local.app_environment.OPS_CACHE_CLUSTER
}

output "OPS_RDS_PROXY" {
  description = "RDS Proxy name (empty when enable_rds_proxy = false)."
  value       = local.app_environment.OPS_RDS_PROXY
}

output "OPS_ALARM_PREFIX" {
  description = "Every alarm of this stack starts with it (monitoring.tf)."
  value       = local.app_environment.OPS_ALARM_PREFIX
}

output "REPLICA_MAX_LAG" {
  value = local.app_environment.REPLICA_MAX_LAG
}

output "CLIENT_IP_HEADER" {
  description = "private_ingress: the header API Gateway sets to the caller's address (X-Client-IP); empty otherwise."
  value       = local.app_environment.CLIENT_IP_HEADER
}

output "alb_dns_name" {
  description = "Point the domain's DNS (alias/CNAME) here; with private_ingress the ALB is internal: use api_gateway_dns instead."
  value       = aws_lb.main.dns_name
}

output "api_gateway_dns" {
  description = "private_ingress: point the domain here (alias with zone api_gateway_zone_id, or CNAME); null otherwise."
  value       = local.private ? aws_api_gateway_domain_name.main[0].regional_domain_name : null
}

output "api_gateway_zone_id" {
  description = "private_ingress: hosted zone of api_gateway_dns, for a Route 53 alias record."
  value       = local.private ? aws_api_gateway_domain_name.main[0].regional_zone_id : null
}

output "web_asg" {
  description = "compute = ec2: the web hosts' Auto Scaling group (Run Command targets tag aws:autoscaling:groupName)."
  value       = local.ec2 ? aws_autoscaling_group.web[0].name : null
}

output "vpc_endpoints" {
  description = "private_ingress: the interface endpoints' services (plus the S3 gateway endpoint)."
  value       = sort(local.endpoint_services)
}

output "ecr_repository_url" {
  description = "docker push <this>:<image_tag>"
  value       = aws_ecr_repository.app.repository_url
}

output "alarm_topic_arn" {
  value = aws_sns_topic.alarms.arn
}

output "user_data_vars" {
  description = "What the EC2 boot script (user_data.sh.tftpl) is rendered with: tests/deploy render it with these."
  value       = local.user_data_vars
}
