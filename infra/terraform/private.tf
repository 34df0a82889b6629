# private_ingress = true: the public reaches the internal ALB only through
#   client -> API Gateway (REST, regional custom domain, WAF, throttling) -> VPC Link -> NLB (TCP 443)
#          -> internal ALB (HTTPS 443, the same listener, rules and target group as the public shape)
# The NLB forwards TCP to the ALB (target_type "alb"), so TLS from API Gateway ends at the ALB with the
# same certificate; API Gateway verifies it against the integration URI's host (domain_name).
#
# The client's IP: API Gateway sends no X-Forwarded-For of its own and passes on whatever the client
# sent, and the ALB then appends the address it saw (the NLB's, a PrivateLink hop). So no entry of
# X-Forwarded-For is the client's. Instead the integration sets X-Client-IP from
# $context.identity.sourceIp (the TCP peer of API Gateway), overwriting any header of that name the
# client sent, and the app trusts that header (CLIENT_IP_HEADER, project/http.py).
locals {
  private           = var.private_ingress
  client_ip_header  = "X-Client-IP"
  api_log_retention = var.log_retention_days
}

# --- NLB in front of the internal ALB ------------------------------------------------------------
resource "aws_security_group" "nlb" {
  count       = local.private ? 1 : 0
  name        = "${local.name}-nlb"
  description = "NLB: VPC Link traffic from API Gateway (PrivateLink), to the ALB only"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${local.name}-nlb" }
}

resource "aws_vpc_security_group_egress_rule" "nlb_to_alb" {
  count                        = local.private ? 1 : 0
  security_group_id            = aws_security_group.nlb[0].id
  description                  = "Requests and health checks to the internal ALB"
  referenced_security_group_id = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

resource "aws_vpc_security_group_ingress_rule" "alb_from_nlb" {
  count                        = local.private ? 1 : 0
  security_group_id            = aws_security_group.alb.id
  description                  = "HTTPS from the NLB (API Gateway's VPC Link) only"
  referenced_security_group_id = aws_security_group.nlb[0].id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

resource "aws_lb" "nlb" {
  #checkov:skip=CKV_AWS_91:NLB access logs exist for TLS listeners only; this one passes TCP through, and API Gateway's access log and the ALB's cover every request
  count                      = local.private ? 1 : 0
  name                       = "${local.name}-nlb"
  load_balancer_type         = "network"
  internal                   = true
  subnets                    = aws_subnet.app[*].id
  security_groups            = [aws_security_group.nlb[0].id]
  enable_deletion_protection = var.deletion_protection
  # A VPC Link reaches the NLB through PrivateLink; its traffic has no source the group could name.
  enforce_security_group_inbound_rules_on_private_link_traffic = "off"
  enable_cross_zone_load_balancing                             = true
}

resource "aws_lb_target_group" "alb" {
  count       = local.private ? 1 : 0
  name        = "${local.name}-to-alb"
  target_type = "alb"
  port        = 443
  protocol    = "TCP"
  vpc_id      = aws_vpc.main.id

  # The ALB's own health: /health answered through its HTTPS listener by a healthy target.
  health_check {
    enabled             = true
    protocol            = "HTTPS"
    path                = "/health"
    matcher             = "200"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_target_group_attachment" "alb" {
  count            = local.private ? 1 : 0
  target_group_arn = aws_lb_target_group.alb[0].arn
  target_id        = aws_lb.main.arn
  port             = 443
  depends_on       = [aws_lb_listener.https] # an ALB target needs a listener on the port
}

resource "aws_lb_listener" "nlb" {
  #checkov:skip=CKV_AWS_2:TCP pass-through on purpose: TLS ends at the ALB behind it, with the same certificate
  #checkov:skip=CKV2_AWS_74:TCP pass-through on purpose: the TLS policy is the ALB's (TLS 1.3/1.2)
  count             = local.private ? 1 : 0
  load_balancer_arn = aws_lb.nlb[0].arn
  port              = 443
  protocol          = "TCP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.alb[0].arn
  }
}

# --- API Gateway (REST) with a VPC Link to the NLB -----------------------------------------------
resource "aws_api_gateway_vpc_link" "main" {
  count       = local.private ? 1 : 0
  name        = "${local.name}-nlb"
  target_arns = [aws_lb.nlb[0].arn]
}

resource "aws_api_gateway_rest_api" "main" {
  count = local.private ? 1 : 0
  name  = local.name
  # Only the custom domain: the execute-api URL would be a second way in with another Host.
  disable_execute_api_endpoint = true
  # Pass every body through untouched (images, fonts, gzip): the app, not API Gateway, owns the bytes.
  binary_media_types = ["*/*"]
  endpoint_configuration {
    types = ["REGIONAL"]
  }
  lifecycle {
    create_before_destroy = true # a replaced API takes over the base path mapping before the old one goes
  }
}

resource "aws_api_gateway_resource" "proxy" {
  count       = local.private ? 1 : 0
  rest_api_id = aws_api_gateway_rest_api.main[0].id
  parent_id   = aws_api_gateway_rest_api.main[0].root_resource_id
  path_part   = "{proxy+}"
}

locals {
  # "/" and "/{proxy+}": every method of every path goes to the ALB as it came.
  api_routes = local.private ? {
    root  = { resource_id = aws_api_gateway_rest_api.main[0].root_resource_id, uri = "https://${var.domain_name}/", params = {} }
    proxy = { resource_id = aws_api_gateway_resource.proxy[0].id, uri = "https://${var.domain_name}/{proxy}", params = { "integration.request.path.proxy" = "method.request.path.proxy" } }
  } : {}
}

resource "aws_api_gateway_method" "any" {
  #checkov:skip=CKV_AWS_59:a public website: the signup form and the person's own pages need no API caller identity; the app authenticates staff itself
  #checkov:skip=CKV2_AWS_53:HTTP_PROXY to the app, which validates every form itself
  for_each           = local.api_routes
  rest_api_id        = aws_api_gateway_rest_api.main[0].id
  resource_id        = each.value.resource_id
  http_method        = "ANY"
  authorization      = "NONE"
  request_parameters = each.key == "proxy" ? { "method.request.path.proxy" = true } : {}
}

resource "aws_api_gateway_integration" "alb" {
  for_each                = local.api_routes
  rest_api_id             = aws_api_gateway_rest_api.main[0].id
  resource_id             = each.value.resource_id
  http_method             = aws_api_gateway_method.any[each.key].http_method
  type                    = "HTTP_PROXY"
  integration_http_method = "ANY"
  connection_type         = "VPC_LINK"
  connection_id           = aws_api_gateway_vpc_link.main[0].id
  # The host is the ALB certificate's name (and the Host header Django sees); the VPC Link routes it.
  uri                  = each.value.uri
  timeout_milliseconds = 29000 # API Gateway's maximum; gunicorn's own timeout is 30 s
  # The caller's address as API Gateway saw it, replacing any X-Client-IP the caller sent.
  request_parameters = merge(each.value.params, {
    "integration.request.header.${local.client_ip_header}" = "context.identity.sourceIp"
  })
}

resource "aws_api_gateway_deployment" "main" {
  count       = local.private ? 1 : 0
  rest_api_id = aws_api_gateway_rest_api.main[0].id
  triggers = {
    redeploy = sha1(jsonencode([aws_api_gateway_method.any, aws_api_gateway_integration.alb]))
  }
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "api" {
  #checkov:skip=CKV_AWS_338:retention is bounded on purpose (log_retention_days, stated on the privacy page)
  count             = local.private ? 1 : 0
  name              = "/${local.name}/api-gateway"
  retention_in_days = local.api_log_retention
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_api_gateway_stage" "live" {
  #checkov:skip=CKV_AWS_120:no caching: every page carries a CSRF token or a person's own data
  #checkov:skip=CKV_AWS_73:the app has no X-Ray SDK; a trace would end at the ALB
  #checkov:skip=CKV2_AWS_51:a public website: browsers present no client certificate (TLS to the ALB is verified)
  #checkov:skip=CKV2_AWS_77:Log4j is covered by KnownBadInputs (the ALB's web ACL, alb.tf); the check also wants AnonymousIpList, which would block VPN users from signing up
  count         = local.private ? 1 : 0
  rest_api_id   = aws_api_gateway_rest_api.main[0].id
  deployment_id = aws_api_gateway_deployment.main[0].id
  stage_name    = "live"

  # No client address, path or query string: paths carry signed links, addresses are personal data.
  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api[0].arn
    format = jsonencode({
      requestId         = "$context.requestId", time = "$context.requestTimeEpoch", method = "$context.httpMethod",
      route             = "$context.resourcePath", status = "$context.status", bytes = "$context.responseLength",
      latency           = "$context.responseLatency", integrationLatency = "$context.integrationLatency",
      integrationStatus = "$context.integrationStatus", waf = "$context.wafResponseCode",
    })
  }
  depends_on = [aws_api_gateway_account.main]
}

resource "aws_api_gateway_method_settings" "all" {
  #checkov:skip=CKV_AWS_225:caching is off on purpose (see the stage)
  #checkov:skip=CKV_AWS_308:caching is off on purpose, so there is no cache to encrypt
  count       = local.private ? 1 : 0
  rest_api_id = aws_api_gateway_rest_api.main[0].id
  stage_name  = aws_api_gateway_stage.live[0].stage_name
  method_path = "*/*"
  settings {
    metrics_enabled    = true
    logging_level      = "ERROR" # execution errors only
    data_trace_enabled = false   # never request or response bodies: they are people's details
    caching_enabled    = false
    # Account-wide and per-stage ceiling in front of the app's own per-IP signup limit.
    throttling_rate_limit  = var.api_throttle_rate
    throttling_burst_limit = var.api_throttle_burst
  }
}

# Execution logging needs the account's API Gateway CloudWatch role (one setting per account and region).
resource "aws_api_gateway_account" "main" {
  count               = local.private ? 1 : 0
  cloudwatch_role_arn = aws_iam_role.api_gateway_logs[0].arn
}

resource "aws_iam_role" "api_gateway_logs" {
  count              = local.private ? 1 : 0
  name               = "${local.name}-apigw-logs"
  assume_role_policy = data.aws_iam_policy_document.api_gateway_assume.json
}

data "aws_iam_policy_document" "api_gateway_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role_policy_attachment" "api_gateway_logs" {
  count      = local.private ? 1 : 0
  role       = aws_iam_role.api_gateway_logs[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}

# The public name: a regional custom domain with the ALB's ACM certificate (same region).
resource "aws_api_gateway_domain_name" "main" {
  count                    = local.private ? 1 : 0
  domain_name              = var.domain_name
  regional_certificate_arn = var.certificate_arn
  security_policy          = "TLS_1_2"
  endpoint_configuration {
    types = ["REGIONAL"]
  }
}

resource "aws_api_gateway_base_path_mapping" "main" {
  count       = local.private ? 1 : 0
  api_id      = aws_api_gateway_rest_api.main[0].id
  stage_name  = aws_api_gateway_stage.live[0].stage_name
  domain_name = aws_api_gateway_domain_name.main[0].domain_name
}

# The stage gets the same web ACL as the ALB (a REGIONAL ACL serves both).
resource "aws_wafv2_web_acl_association" "api" {
  count        = local.private && var.enable_waf ? 1 : 0
  resource_arn = aws_api_gateway_stage.live[0].arn
  web_acl_arn  = aws_wafv2_web_acl.main[0].arn
}
