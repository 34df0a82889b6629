# Security groups, each admitting only the layer in front of it, by group reference (never by address):
#   internet -> alb :80/:443 -> app :8000 -> db :5432 (directly or via the proxy), redis :6379
#   private_ingress: API Gateway (VPC Link) -> nlb -> alb :443; app -> endpoints :443 and the S3 prefix list
#   (the nlb and endpoints groups are in private.tf and endpoints.tf)
# Groups declared without inline rules start with no egress at all (Terraform drops AWS's allow-all).
resource "aws_security_group" "alb" {
  name        = "${local.name}-alb"
  description = "ALB: HTTP/HTTPS from the internet, to the app port only"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${local.name}-alb" }
}

resource "aws_security_group" "app" {
  name        = "${local.name}-app"
  description = "ECS tasks: app port from the ALB only"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${local.name}-app" }
}

resource "aws_security_group" "db" {
  name        = "${local.name}-db"
  description = "RDS PostgreSQL: 5432 from the app (and the proxy) only"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${local.name}-db" }
}

resource "aws_security_group" "redis" {
  name        = "${local.name}-redis"
  description = "ElastiCache Redis: 6379 from the app only"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${local.name}-redis" }
}

resource "aws_security_group" "proxy" {
  #checkov:skip=CKV2_AWS_5:attached to aws_db_proxy.main, a resource type this check does not know
  count       = var.enable_rds_proxy ? 1 : 0
  name        = "${local.name}-db-proxy"
  description = "RDS Proxy: 5432 from the app, to the database"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${local.name}-db-proxy" }
}

# --- internet -> ALB -----------------------------------------------------------------------------
resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  count             = var.private_ingress ? 0 : 1
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from the internet"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  #checkov:skip=CKV_AWS_260:port 80 only answers with a 301 to HTTPS (listener in alb.tf)
  count             = var.private_ingress ? 0 : 1
  security_group_id = aws_security_group.alb.id
  description       = "HTTP from the internet (redirected to HTTPS)"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
}

resource "aws_vpc_security_group_egress_rule" "alb_to_app" {
  security_group_id            = aws_security_group.alb.id
  description                  = "Requests and health checks to the app"
  referenced_security_group_id = aws_security_group.app.id
  ip_protocol                  = "tcp"
  from_port                    = 8000
  to_port                      = 8000
}

# --- ALB -> app ----------------------------------------------------------------------------------
resource "aws_vpc_security_group_ingress_rule" "app_from_alb" {
  security_group_id            = aws_security_group.app.id
  description                  = "App port from the ALB"
  referenced_security_group_id = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = 8000
  to_port                      = 8000
}

resource "aws_vpc_security_group_egress_rule" "app_to_db" {
  security_group_id            = aws_security_group.app.id
  description                  = "PostgreSQL primary and replicas"
  referenced_security_group_id = aws_security_group.db.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_vpc_security_group_egress_rule" "app_to_proxy" {
  count                        = var.enable_rds_proxy ? 1 : 0
  security_group_id            = aws_security_group.app.id
  description                  = "PostgreSQL through RDS Proxy"
  referenced_security_group_id = aws_security_group.proxy[0].id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_vpc_security_group_egress_rule" "app_to_redis" {
  security_group_id            = aws_security_group.app.id
  description                  = "Redis"
  referenced_security_group_id = aws_security_group.redis.id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

# The one rule not by reference: tasks pull from ECR and call CloudWatch, Secrets Manager, RDS and S3
# APIs over HTTPS through the NAT gateway. AWS service endpoints have no security group to point at.
# The worker (same group) also delivers outgoing webhooks through this rule and the NAT: HTTPS on 443 to
# public addresses only (api/ssrf.py refuses the rest); an endpoint on another port fails its attempts, and
# receivers see the NAT's Elastic IPs (output nat_public_ips if you add one: give them to receivers to allow).
# private_ingress = true has no NAT and no route out: webhooks reach only receivers inside the VPC (named in
# WEBHOOK_ALLOWED_HOSTS, e.g. over peering or PrivateLink); delivering to the internet needs an egress path
# (a NAT or an egress proxy) that this variant deliberately does not have (docs/api.md).
resource "aws_vpc_security_group_egress_rule" "app_to_aws_apis" {
  count             = var.private_ingress ? 0 : 1 # private_ingress: the endpoints only (endpoints.tf)
  security_group_id = aws_security_group.app.id
  description       = "HTTPS to AWS APIs (ECR, CloudWatch, Secrets Manager, RDS, S3) via NAT"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

# --- app (and proxy) -> data tier ----------------------------------------------------------------
resource "aws_vpc_security_group_ingress_rule" "db_from_app" {
  security_group_id            = aws_security_group.db.id
  description                  = "PostgreSQL from the app"
  referenced_security_group_id = aws_security_group.app.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_vpc_security_group_ingress_rule" "db_from_proxy" {
  count                        = var.enable_rds_proxy ? 1 : 0
  security_group_id            = aws_security_group.db.id
  description                  = "PostgreSQL from RDS Proxy"
  referenced_security_group_id = aws_security_group.proxy[0].id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_vpc_security_group_ingress_rule" "proxy_from_app" {
  count                        = var.enable_rds_proxy ? 1 : 0
  security_group_id            = aws_security_group.proxy[0].id
  description                  = "PostgreSQL from the app"
  referenced_security_group_id = aws_security_group.app.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_vpc_security_group_egress_rule" "proxy_to_db" {
  count                        = var.enable_rds_proxy ? 1 : 0
  security_group_id            = aws_security_group.proxy[0].id
  description                  = "PostgreSQL primary"
  referenced_security_group_id = aws_security_group.db.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_vpc_security_group_ingress_rule" "redis_from_app" {
  security_group_id            = aws_security_group.redis.id
  description                  = "Redis from the app"
  referenced_security_group_id = aws_security_group.app.id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}
