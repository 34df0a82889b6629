# The erasure ledger (users/tombstones.py; docs/operations.md, "Restore"): one small JSON object per erasure
# (a keyed HMAC of the address, the signup id, times, the reason; no personal data in clear), which a
# database restore cannot roll back. Written once by the app (If-None-Match) and locked in COMPLIANCE mode
# for var.backup_retention_days, as long as any backup from before the erasure can be restored: nobody,
# the root user included, can delete or overwrite an entry before then. Its own KMS key; the app may only
# list, read and add.
resource "aws_kms_key" "ledger" {
  description             = "${local.name}: erasure ledger"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.ledger_key.json
}

resource "aws_kms_alias" "ledger" {
  name          = "alias/${local.name}-erasure-ledger"
  target_key_id = aws_kms_key.ledger.key_id
}

data "aws_iam_policy_document" "ledger_key" {
  #checkov:skip=CKV_AWS_109:a key policy's "*" is the key itself; this is AWS's default account statement
  #checkov:skip=CKV_AWS_111:a key policy's "*" is the key itself; this is AWS's default account statement
  #checkov:skip=CKV_AWS_356:a key policy's "*" is the key itself; this is AWS's default account statement
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }
}

resource "aws_s3_bucket" "ledger" {
  #checkov:skip=CKV_AWS_144:one region by design; a second copy would be a second ledger to reconcile
  #checkov:skip=CKV2_AWS_62:nothing consumes object events
  bucket              = "${local.name}-erasure-ledger-${local.account_id}"
  object_lock_enabled = true
}

resource "aws_s3_bucket_object_lock_configuration" "ledger" {
  bucket = aws_s3_bucket.ledger.id
  rule {
    default_retention { # the app sets each entry's retention itself; this covers any other writer
      mode = "COMPLIANCE"
      days = var.backup_retention_days
    }
  }
}

resource "aws_s3_bucket_versioning" "ledger" {
  bucket = aws_s3_bucket.ledger.id
  versioning_configuration {
    status = "Enabled" # required by Object Lock
  }
}

resource "aws_s3_bucket_public_access_block" "ledger" {
  bucket                  = aws_s3_bucket.ledger.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "ledger" {
  bucket = aws_s3_bucket.ledger.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "ledger" {
  bucket = aws_s3_bucket.ledger.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.ledger.arn
    }
    bucket_key_enabled = true
  }
}

# An entry is useless once no backup from before it exists: it expires a week after its lock ends.
resource "aws_s3_bucket_lifecycle_configuration" "ledger" {
  bucket = aws_s3_bucket.ledger.id
  rule {
    id     = "after-the-backups"
    status = "Enabled"
    filter {}
    expiration {
      days = var.backup_retention_days + 7
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
  depends_on = [aws_s3_bucket_versioning.ledger]
}

resource "aws_s3_bucket_logging" "ledger" {
  bucket        = aws_s3_bucket.ledger.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3/erasure-ledger/"
  depends_on    = [aws_s3_bucket_policy.logs]
}

resource "aws_s3_bucket_policy" "ledger" {
  bucket     = aws_s3_bucket.ledger.id
  policy     = data.aws_iam_policy_document.ledger_bucket.json
  depends_on = [aws_s3_bucket_public_access_block.ledger]
}

data "aws_iam_policy_document" "ledger_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.ledger.arn, "${aws_s3_bucket.ledger.arn}/*"]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
  # Nobody deletes an entry or changes the bucket's lock (Object Lock refuses deletion too; this also covers
  # versions after their lock, which only the lifecycle rule removes). PutObjectRetention stays: the app's
  # PutObject sets each entry's COMPLIANCE retention, which can only ever be lengthened.
  statement {
    sid       = "NobodyDeletes"
    effect    = "Deny"
    actions   = ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention", "s3:PutObjectLegalHold", "s3:PutBucketObjectLockConfiguration"]
    resources = [aws_s3_bucket.ledger.arn, "${aws_s3_bucket.ledger.arn}/*"]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
  }
}

# The app's side. Web: the restore check lists the names. Worker (and the one-off reapply_erasures run with
# its task definition): list, read and add; nobody deletes.
data "aws_iam_policy_document" "ledger_list" {
  statement {
    sid       = "LedgerList"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.ledger.arn]
  }
}

data "aws_iam_policy_document" "ledger_app" {
  source_policy_documents = [data.aws_iam_policy_document.ledger_list.json]
  statement {
    sid       = "LedgerReadAdd"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:PutObjectRetention"]
    resources = ["${aws_s3_bucket.ledger.arn}/erasures/*"]
  }
  statement {
    sid       = "LedgerKey"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.ledger.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
}

# The HMAC key for addresses in the ledger (ERASURE_LEDGER_KEY): generated write-only, never in the state.
# It must never change while entries made with it may still be needed (docs/operations.md, Restore).
ephemeral "aws_secretsmanager_random_password" "ledger_key" {
  password_length     = 64
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret" "ledger_key" {
  #checkov:skip=CKV2_AWS_57:a new key would make the ledger's entries unmatchable by address; never rotated
  name                    = "${local.name}/erasure-ledger-key"
  description             = "ERASURE_LEDGER_KEY: HMAC key of the addresses in the erasure ledger"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = var.deletion_protection ? 30 : 0
}

resource "aws_secretsmanager_secret_version" "ledger_key" {
  secret_id                = aws_secretsmanager_secret.ledger_key.id
  secret_string_wo         = ephemeral.aws_secretsmanager_random_password.ledger_key.random_password
  secret_string_wo_version = 1
}
