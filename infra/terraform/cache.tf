# Redis OSS: a primary and a replica in different AZs with automatic failover, TLS and AUTH.
resource "aws_elasticache_subnet_group" "main" {
  count      = var.enable_elasticache ? 1 : 0
  name       = "${local.name}-redis"
  subnet_ids = aws_subnet.data[*].id
}

resource "aws_cloudwatch_log_group" "redis" {
  #checkov:skip=CKV_AWS_338:retention is bounded on purpose (log_retention_days, stated on the privacy page)
  count             = var.enable_elasticache ? 1 : 0
  name              = "/${local.name}/redis-slow-log"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_elasticache_replication_group" "redis" {
  count                = var.enable_elasticache ? 1 : 0
  replication_group_id = "${local.name}-redis"
  description          = "${local.name} cache and sessions"
  engine               = "redis"
  engine_version       = var.cache_engine_version
  node_type            = var.cache_node_type
  port                 = 6379
  parameter_group_name = "default.redis${split(".", var.cache_engine_version)[0]}"

  num_cache_clusters         = 2
  automatic_failover_enabled = true
  multi_az_enabled           = true
  subnet_group_name          = aws_elasticache_subnet_group.main[0].name
  security_group_ids         = [aws_security_group.redis.id]

  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.main.arn
  transit_encryption_enabled = true
  auth_token                 = aws_secretsmanager_secret_version.redis_auth[0].secret_string

  snapshot_retention_limit   = 7
  snapshot_window            = "01:00-02:00"
  maintenance_window         = "sun:05:00-sun:06:00"
  auto_minor_version_upgrade = true
  apply_immediately          = false

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.redis[0].name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "slow-log"
  }
}

locals {
  # CloudWatch's ElastiCache metrics are per member cluster; ElastiCache names them <group>-001, -002.
  cache_member_ids = [for i in range(1, 3) : format("%s-redis-%03d", local.name, i) if var.enable_elasticache]
  cache_cluster_id = join("", slice(local.cache_member_ids, 0, min(1, length(local.cache_member_ids))))
  redis_host       = var.enable_elasticache ? aws_elasticache_replication_group.redis[0].primary_endpoint_address : ""
}
