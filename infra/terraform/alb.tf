# The only entry point (with private_ingress, behind API Gateway -> NLB: private.tf). HTTPS terminates
# here; HTTP answers with a redirect. The target group's health
# checks are sent by the ALB straight to each task's port 8000, so the redirect never applies to them.
resource "aws_lb" "main" {
  #checkov:skip=CKV2_AWS_76:Log4j is covered by KnownBadInputs; the check also wants AnonymousIpList, which would block VPN users from signing up
  name                       = "${local.name}-alb"
  load_balancer_type         = "application"
  internal                   = var.private_ingress # reached only through the NLB (private.tf)
  subnets                    = var.private_ingress ? aws_subnet.app[*].id : aws_subnet.public[*].id
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  idle_timeout               = 60

  access_logs {
    bucket  = aws_s3_bucket.logs.id
    prefix  = "alb"
    enabled = true
  }

  depends_on = [aws_s3_bucket_policy.logs]
}

resource "aws_lb_target_group" "app" {
  #checkov:skip=CKV_AWS_378:TLS ends at the ALB; the hop to the task stays inside the VPC, on the app SG
  name        = "${local.name}-app"
  port        = 8000
  protocol    = "HTTP"
  target_type = var.compute == "ecs" ? "ip" : "instance" # Fargate tasks (awsvpc), or the EC2 hosts (ec2.tf)
  vpc_id      = aws_vpc.main.id

  # gunicorn's graceful_timeout is 25 s: give in-flight requests that long plus a margin before the
  # target is dropped, so a deploy or scale-in never cuts a request off.
  deregistration_delay = 30

  # /health: the task answers and is not draining; it looks at nothing outside the task (the AWS
  # Builders' Library, "Implementing health checks": a dependency in the load balancer's check turns
  # it into a hard dependency of the whole fleet). A database outage therefore never makes the ALB or
  # ECS replace every task, and a deploy during one does not roll back; the app answers its own
  # "database unavailable" page instead. The check goes through the nginx sidecar (port 8000) to
  # gunicorn, so it also covers the proxy.
  #   interval 10 s, timeout 5 s: /health does no I/O, so 5 s only ever fails a stuck process.
  #   unhealthy_threshold 3: a task leaves rotation after 30 s of failures.
  #   healthy_threshold 2: a new task takes traffic 20 s after it first answers.
  # /ready (the deep check: database, replicas, Redis) stays for on-call and alarms, from inside the
  # VPC or through the ops page; the listener rule below hides it from the internet.
  health_check {
    enabled             = true
    path                = "/health"
    port                = "traffic-port"
    protocol            = "HTTP"
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = { Name = "${local.name}-app" }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.main.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.app.arn
  }
}

# /ready is not for the internet: each call costs database work, and its detail is for on-call. The
# listener answers it with a fixed 404 before any request reaches a task. Path patterns are
# case-sensitive, like Django's URLs, and "/ready/*" covers a trailing slash and anything below it.
resource "aws_lb_listener_rule" "hide_ready" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 1

  condition {
    path_pattern {
      values = ["/ready", "/ready/*"]
    }
  }

  action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      message_body = "Not Found"
      status_code  = "404"
    }
  }
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.main.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      protocol    = "HTTPS"
      port        = "443"
      status_code = "HTTP_301"
    }
  }
}

# --- WAF -----------------------------------------------------------------------------------------
resource "aws_wafv2_web_acl" "main" {
  count       = var.enable_waf ? 1 : 0
  name        = "${local.name}-alb"
  description = "AWS managed common and known-bad-inputs (incl. Log4j) rules"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  rule {
    name     = "common"
    priority = 1
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesCommonRuleSet"
        # Sign-up and admin forms post bodies larger than 8 KB is rare but legitimate; count, don't block.
        rule_action_override {
          name = "SizeRestrictions_BODY"
          action_to_use {
            count {}
          }
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-common"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "known-bad-inputs"
    priority = 2
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${local.name}-alb"
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "alb" {
  count        = var.enable_waf ? 1 : 0
  resource_arn = aws_lb.main.arn
  web_acl_arn  = aws_wafv2_web_acl.main[0].arn
}

resource "aws_cloudwatch_log_group" "waf" {
  #checkov:skip=CKV_AWS_338:retention is bounded on purpose (log_retention_days, stated on the privacy page)
  count             = var.enable_waf ? 1 : 0
  name              = "aws-waf-logs-${local.name}" # WAF requires this prefix
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_wafv2_web_acl_logging_configuration" "main" {
  count                   = var.enable_waf ? 1 : 0
  resource_arn            = aws_wafv2_web_acl.main[0].arn
  log_destination_configs = [aws_cloudwatch_log_group.waf[0].arn]

  # WAF logs every request's URI and headers. Keep out what opens a person's data or a staff session: the
  # path and query string (an emailed link carries a signed token in its path, /my-data/<token>/), the
  # Referer (a page's URL, the same token), cookies (staff sessions, the self-service cookie, CSRF tokens) and
  # bearer tokens (READY_TOKEN).
  redacted_fields {
    uri_path {}
  }
  redacted_fields {
    query_string {}
  }
  redacted_fields {
    single_header {
      name = "referer"
    }
  }
  redacted_fields {
    single_header {
      name = "cookie"
    }
  }
  redacted_fields {
    single_header {
      name = "authorization"
    }
  }

  # And only what is needed to tune the rules: requests a rule blocked or counted. Allowed traffic is in the
  # ALB's metrics and access logs (readable by the log-reader role only, s3.tf).
  logging_filter {
    default_behavior = "DROP"
    filter {
      behavior    = "KEEP"
      requirement = "MEETS_ANY"
      condition {
        action_condition {
          action = "BLOCK"
        }
      }
      condition {
        action_condition {
          action = "COUNT"
        }
      }
      condition {
        action_condition {
          action = "EXCLUDED_AS_COUNT"
        }
      }
    }
  }
}
