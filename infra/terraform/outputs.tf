# Everything the app reads from its environment; the same values the ECS task receives.
output "app_environment" {
  description = "Plain environment variables of the app (also set on the ECS task)."
  value       = local.app_environment
}

output "app_secrets" {
  description = "Variables injected from Secrets Manager through ECS `secrets` (name => secret ARN)."
  value       = local.app_secrets
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
  description = "Secret RDS manages for the master user: JSON with username and password."
  value       = local.app_environment.DATABASE_SECRET_ARN
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
  description = "REDIS_URL (rediss:// with the AUTH token) lives in this secret; ECS injects it."
  value       = local.app_secrets.REDIS_URL
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
  description = "Empty: Fargate has no Auto Scaling group (see OPS_ECS_CLUSTER / OPS_ECS_SERVICE)."
  value       = local.app_environment.OPS_ASG
}

output "OPS_EC2_INSTANCES" {
  description = "Empty: Fargate has no EC2 instances."
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

output "alb_dns_name" {
  description = "Point the domain's DNS (alias/CNAME) here."
  value       = aws_lb.main.dns_name
}

output "ecr_repository_url" {
  description = "docker push <this>:<image_tag>"
  value       = aws_ecr_repository.app.repository_url
}

output "alarm_topic_arn" {
  value = aws_sns_topic.alarms.arn
}
