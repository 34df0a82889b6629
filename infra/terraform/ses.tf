# Email through Amazon SES: a DKIM-signed domain identity, a configuration set whose bounce, complaint
# and delivery events go to an SNS topic, and that topic's HTTPS subscription to the app's webhook
# (POST /webhooks/ses/, which verifies the SNS signature and accepts only SES_EVENTS_TOPIC_ARN).
locals {
  email_domain      = coalesce(var.email_domain, var.domain_name)
  email_from        = coalesce(var.email_from, "no-reply@${local.email_domain}")
  public_base_url   = "https://${var.domain_name}"
  ses_config_set    = "${local.name}-mail"
  ses_events_source = "arn:${local.partition}:ses:${var.region}:${local.account_id}:configuration-set/${local.ses_config_set}"
}

# The SES v1 API's configuration set (v1 and v2 share configuration sets): moto's v2 GetConfigurationSet
# answers with a malformed body, so the v2 resource could not be applied in the tests. What the v2 one
# adds, suppression of bounced and complaining addresses, is SES's account-level default anyway.
resource "aws_ses_configuration_set" "main" {
  name                       = local.ses_config_set
  reputation_metrics_enabled = true
  sending_enabled            = true

  delivery_options {
    tls_policy = "Require" # never hand a message to a receiving server over plain SMTP
  }
}

# Easy DKIM (2048-bit keys SES rotates). SES verifies the domain once the three CNAMEs resolve; mail
# is signed d=<email_domain>, which satisfies DMARC alignment without a custom MAIL FROM domain.
resource "aws_sesv2_email_identity" "domain" {
  email_identity         = local.email_domain
  configuration_set_name = aws_ses_configuration_set.main.name # the default for every message
}

resource "aws_route53_record" "dkim" {
  count   = var.route53_zone_id == null ? 0 : 3
  zone_id = var.route53_zone_id
  name    = "${aws_sesv2_email_identity.domain.dkim_signing_attributes[0].tokens[count.index]}._domainkey.${local.email_domain}"
  type    = "CNAME"
  ttl     = 1800
  records = ["${aws_sesv2_email_identity.domain.dkim_signing_attributes[0].tokens[count.index]}.dkim.amazonses.com"]
}

# --- events: configuration set -> SNS -> the app's webhook ----------------------------------------
resource "aws_sns_topic" "ses_events" {
  name              = "${local.name}-ses-events"
  kms_master_key_id = aws_kms_key.main.arn
  signature_version = 2 # SHA256: the webhook refuses version 1 (SHA1)
}

resource "aws_sns_topic_policy" "ses_events" {
  arn    = aws_sns_topic.ses_events.arn
  policy = data.aws_iam_policy_document.ses_events_topic.json
}

data "aws_iam_policy_document" "ses_events_topic" {
  statement {
    sid       = "SesPublishesThisConfigurationSet"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.ses_events.arn]
    principals {
      type        = "Service"
      identifiers = ["ses.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = [local.ses_events_source]
    }
  }
}

# Also the v1 API: moto has no v2 event destinations (and no v1 DeleteConfigurationSetEventDestination;
# the test forgets this one before destroy, as deleting the configuration set drops it in SES too).
resource "aws_ses_event_destination" "sns" {
  name                   = "sns"
  configuration_set_name = aws_ses_configuration_set.main.name
  enabled                = true
  matching_types         = ["bounce", "complaint", "delivery"]
  sns_destination {
    topic_arn = aws_sns_topic.ses_events.arn
  }
  depends_on = [aws_sns_topic_policy.ses_events]
}

# SNS posts a SubscriptionConfirmation first; the webhook confirms it (GET SubscribeURL after checking
# the signature), so Terraform does not wait for it. Raw delivery stays off: the signature covers the
# SNS envelope.
# Retries: the webhook answers 503 to what may pass later (a certificate fetch, the database) and 403 only
# to forgeries. AWS caps an HTTPS delivery policy at 3,600 s of retries in all (a hard limit), and the
# webhook refuses a message older than an hour (its Timestamp, SNS_MAX_AGE_SECONDS), so the policy below
# spreads 16 retries over about 45 minutes: 2 at 10 s, 8 backing off exponentially 10 s -> 5 min, 6 at 5 min.
# What still fails goes to the dead-letter queue (kept 14 days), whose first message raises an alarm
# (monitoring.tf): an operator applies those events by hand (docs/notes/sec-queue.md).
locals {
  ses_events_delivery_policy = {
    healthyRetryPolicy = {
      numRetries         = 16
      numNoDelayRetries  = 0
      numMinDelayRetries = 2
      minDelayTarget     = 10
      maxDelayTarget     = 300
      numMaxDelayRetries = 6
      backoffFunction    = "exponential"
    }
    throttlePolicy = { maxReceivesPerSecond = 50 }
  }
}

resource "aws_sns_topic_subscription" "ses_webhook" {
  topic_arn              = aws_sns_topic.ses_events.arn
  protocol               = "https"
  endpoint               = "${local.public_base_url}/webhooks/ses/"
  endpoint_auto_confirms = false
  raw_message_delivery   = false
  delivery_policy        = jsonencode(local.ses_events_delivery_policy)
  redrive_policy         = jsonencode({ deadLetterTargetArn = aws_sqs_queue.ses_events_dlq.arn })
}

# The SES events SNS could not deliver within its policy: kept 14 days, encrypted with the stack's key.
resource "aws_sqs_queue" "ses_events_dlq" {
  name                      = "${local.name}-ses-events-dlq"
  message_retention_seconds = 1209600 # 14 days, SQS's maximum
  kms_master_key_id         = aws_kms_key.main.arn
}

resource "aws_sqs_queue_policy" "ses_events_dlq" {
  queue_url = aws_sqs_queue.ses_events_dlq.id
  policy    = data.aws_iam_policy_document.ses_events_dlq.json
}

data "aws_iam_policy_document" "ses_events_dlq" {
  statement {
    sid       = "SnsDeadLettersOfTheSesEventsTopic"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.ses_events_dlq.arn]
    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_sns_topic.ses_events.arn]
    }
  }
}
