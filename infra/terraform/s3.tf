data "aws_elb_service_account" "main" {}

# --- static/media bucket (AWS_STORAGE_BUCKET_NAME) -----------------------------------------------
resource "aws_s3_bucket" "assets" {
  #checkov:skip=CKV_AWS_144:cross-region replication is a DR decision; versioning covers mistakes
  #checkov:skip=CKV2_AWS_62:nothing consumes object events
  bucket = "${local.name}-assets-${local.account_id}"
}

resource "aws_s3_bucket_public_access_block" "assets" {
  bucket                  = aws_s3_bucket.assets.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "assets" {
  bucket = aws_s3_bucket.assets.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "assets" {
  bucket = aws_s3_bucket.assets.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.main.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_versioning" "assets" {
  bucket = aws_s3_bucket.assets.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "assets" {
  bucket = aws_s3_bucket.assets.id
  rule {
    id     = "old-versions-and-uploads"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 90
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
  depends_on = [aws_s3_bucket_versioning.assets]
}

resource "aws_s3_bucket_logging" "assets" {
  bucket        = aws_s3_bucket.assets.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3/assets/"
  depends_on    = [aws_s3_bucket_policy.logs]
}

resource "aws_s3_bucket_policy" "assets" {
  bucket     = aws_s3_bucket.assets.id
  policy     = data.aws_iam_policy_document.assets.json
  depends_on = [aws_s3_bucket_public_access_block.assets]
}

data "aws_iam_policy_document" "assets" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.assets.arn, "${aws_s3_bucket.assets.arn}/*"]
    principals {
      type        = "AWS" # same as "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

# --- log bucket: ALB access logs and S3 server access logs ---------------------------------------
# ALB access logs hold every request line, so an emailed link's token on its first use
# (users/selfservice.py): one role alone may read the bucket's objects (the bucket policy denies everyone
# else, account administrators included). Both ARNs are spelled out so the policy is known at plan time.
locals {
  logs_bucket         = "${local.name}-logs-${local.account_id}"
  logs_bucket_arn     = "arn:${local.partition}:s3:::${local.logs_bucket}"
  log_reader_role_arn = "arn:${local.partition}:iam::${local.account_id}:role/${local.name}-log-reader"
}

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_18:this is the access-log bucket; logging it into itself would loop
  #checkov:skip=CKV_AWS_144:logs are not replicated to a second region
  #checkov:skip=CKV2_AWS_62:nothing consumes object events
  #checkov:skip=CKV_AWS_145:ALB access logs only support SSE-S3, not SSE-KMS
  bucket        = local.logs_bucket
  force_destroy = !var.deletion_protection
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    id     = "expire-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = var.log_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
  depends_on = [aws_s3_bucket_versioning.logs]
}

resource "aws_s3_bucket_policy" "logs" {
  bucket     = aws_s3_bucket.logs.id
  policy     = data.aws_iam_policy_document.logs.json
  depends_on = [aws_s3_bucket_public_access_block.logs]
}

data "aws_iam_policy_document" "logs" {
  # ALB access logs: the regional ELB account (regions before Aug 2022) and the log-delivery service.
  statement {
    sid       = "AlbAccessLogs"
    actions   = ["s3:PutObject"]
    resources = ["${local.logs_bucket_arn}/alb/AWSLogs/${local.account_id}/*"]
    principals {
      type        = "AWS"
      identifiers = [data.aws_elb_service_account.main.arn]
    }
  }
  statement {
    sid       = "AlbLogDelivery"
    actions   = ["s3:PutObject"]
    resources = ["${local.logs_bucket_arn}/alb/AWSLogs/${local.account_id}/*"]
    principals {
      type        = "Service"
      identifiers = ["logdelivery.elasticloadbalancing.amazonaws.com"]
    }
  }
  statement {
    sid       = "S3ServerAccessLogs"
    actions   = ["s3:PutObject"]
    resources = ["${local.logs_bucket_arn}/s3/assets/*"]
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
  statement { # one statement per prefix: moto matches a single Resource string
    sid       = "S3ServerAccessLogsLedger"
    actions   = ["s3:PutObject"]
    resources = ["${local.logs_bucket_arn}/s3/erasure-ledger/*"]
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
  statement {
    sid       = "OnlyTheLogReaderReads"
    effect    = "Deny"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${local.logs_bucket_arn}/*"]
    principals {
      type        = "AWS" # everyone, this account's administrators included ...
      identifiers = ["*"]
    }
    condition { # ... but the log-reader role's sessions
      test     = "ArnNotEquals"
      variable = "aws:PrincipalArn"
      values   = [local.log_reader_role_arn]
    }
  }
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [local.logs_bucket_arn, "${local.logs_bucket_arn}/*"]
    principals {
      type        = "AWS" # same as "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

# Who may assume the reader is up to IAM in this account (its trust names the account), with MFA only.
resource "aws_iam_role" "log_reader" {
  name                 = "${local.name}-log-reader"
  description          = "The only principal that may read the ALB and S3 access logs (they can hold link tokens)"
  assume_role_policy   = data.aws_iam_policy_document.log_reader_trust.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "log_reader_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
    condition {
      test     = "Bool"
      variable = "aws:MultiFactorAuthPresent"
      values   = ["true"]
    }
  }
}

resource "aws_iam_role_policy" "log_reader" {
  name   = "read-access-logs"
  role   = aws_iam_role.log_reader.id
  policy = data.aws_iam_policy_document.log_reader.json
}

data "aws_iam_policy_document" "log_reader" {
  statement {
    sid       = "ListTheLogs"
    actions   = ["s3:ListBucket"]
    resources = [local.logs_bucket_arn]
  }
  statement {
    sid       = "ReadTheLogs"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${local.logs_bucket_arn}/*"]
  }
}
