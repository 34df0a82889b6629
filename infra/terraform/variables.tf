# --- identity and region -------------------------------------------------------------------------
variable "name" {
  description = "Short name used as the prefix of every resource."
  type        = string
  default     = "signup"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name: 2-21 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "environment" {
  description = "Environment name (prod, staging, ...); part of every resource name."
  type        = string
  default     = "prod"
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "eu-west-1"
}

variable "aws_endpoint" {
  description = "Send every AWS API call to this URL instead of AWS (moto server in the tests). null = real AWS."
  type        = string
  default     = null
}

# --- network -------------------------------------------------------------------------------------
variable "vpc_cidr" {
  description = "VPC CIDR; split into public /24s, private app /22s and private data /24s over two AZs."
  type        = string
  default     = "10.40.0.0/16"
}

variable "single_nat_gateway" {
  description = "One NAT gateway instead of one per AZ: cheaper, but an AZ outage cuts the other AZ's egress."
  type        = bool
  default     = false
}

variable "private_ingress" {
  description = "Fully private VPC: no internet gateway or NAT, an internal ALB reached through API Gateway (REST) -> VPC Link -> NLB, AWS APIs through VPC endpoints (private.tf, endpoints.tf)."
  type        = bool
  default     = false
}

variable "api_throttle_rate" {
  description = "private_ingress: API Gateway stage throttling, steady requests per second over all clients."
  type        = number
  default     = 100
}

variable "api_throttle_burst" {
  description = "private_ingress: API Gateway stage throttling, burst bucket size."
  type        = number
  default     = 200
}

variable "ses_endpoint_service" {
  description = "private_ingress: VPC endpoint service the app sends mail through. The app uses the SES v2 API (django-anymail, boto3: email.<region>.amazonaws.com), i.e. \"email\"; \"email-smtp\" only for an SMTP backend."
  type        = string
  default     = "email"
}

# --- edge ----------------------------------------------------------------------------------------
variable "certificate_arn" {
  description = "ACM certificate ARN for the HTTPS listener (must cover domain_name)."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN."
  }
}

variable "domain_name" {
  description = "Public host name of the service (ALLOWED_HOSTS)."
  type        = string
}

variable "email_domain" {
  description = "Domain SES sends from (a DKIM-verified domain identity); null = domain_name."
  type        = string
  default     = null
}

variable "email_from" {
  description = "EMAIL_FROM: sender address, in email_domain; null = no-reply@<email_domain>."
  type        = string
  default     = null
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone of email_domain: if set, the DKIM CNAMEs are created there; else see the output ses_dns_records."
  type        = string
  default     = null
}

variable "enable_waf" {
  description = "Attach a WAFv2 web ACL (AWS managed common + known-bad-inputs rules) to the ALB."
  type        = bool
  default     = true
}

# --- application ---------------------------------------------------------------------------------
variable "image_tag" {
  description = "Tag of the image in the ECR repository to run (tags are immutable: one per release)."
  type        = string
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64; must match the image."
  type        = string
  default     = "X86_64"
}

variable "app_cpu" {
  description = "Fargate task CPU units."
  type        = number
  default     = 512
}

variable "app_memory" {
  description = "Fargate task memory (MiB)."
  type        = number
  default     = 1024
}

variable "gunicorn_threads" {
  description = "GUNICORN_THREADS: threads per gunicorn worker (WEB_CONCURRENCY follows app_cpu, see ecs.tf)."
  type        = number
  default     = 4
}

variable "worker_count" {
  description = "Tasks of the queue worker service (python manage.py worker)."
  type        = number
  default     = 1
}

variable "worker_cpu" {
  description = "Fargate CPU units of a worker task (also of the purge and migration one-offs)."
  type        = number
  default     = 256
}

variable "worker_memory" {
  description = "Fargate memory (MiB) of a worker task (also of the purge and migration one-offs)."
  type        = number
  default     = 512
}

variable "purge_schedule" {
  description = "When the retention purge (python manage.py purge) runs: EventBridge Scheduler expression, UTC."
  type        = string
  default     = "cron(30 3 * * ? *)"
}

variable "enable_purge_schedule" {
  description = "Run the retention purge on purge_schedule. Off by default: switch it on once a dry run (python manage.py purge --dry-run) has been read."
  type        = bool
  default     = false
}

variable "compute" {
  description = "Where the web tier runs: \"ecs\" (Fargate service, default) or \"ec2\" (Auto Scaling group of EC2 hosts running the same image, ec2.tf). Worker, purge and migration stay Fargate tasks in both."
  type        = string
  default     = "ecs"
  validation {
    condition     = contains(["ecs", "ec2"], var.compute)
    error_message = "compute must be \"ecs\" or \"ec2\"."
  }
}

variable "ec2_instance_type" {
  description = "compute = ec2: instance type of the web hosts (must match cpu_architecture: t3.* for X86_64, t4g.* for ARM64)."
  type        = string
  default     = "t3.small"
}

variable "ec2_root_volume_size" {
  description = "compute = ec2: encrypted gp3 root volume of each host (GiB): the OS, Docker and the two images."
  type        = number
  default     = 30
}

variable "app_min_count" {
  description = "Minimum (and initial) number of web tasks, or of EC2 hosts with compute = ec2; 2 keeps one per AZ."
  type        = number
  default     = 2
}

variable "app_max_count" {
  description = "Maximum number of tasks auto scaling may run."
  type        = number
  default     = 6
}

variable "enable_autoscaling" {
  description = "Auto scale the service. false only for moto, which lacks Application Auto Scaling tagging."
  type        = bool
  default     = true
}

variable "scale_cpu_target" {
  description = "Target average CPU utilisation (%) of the service."
  type        = number
  default     = 60
}

variable "scale_requests_per_target" {
  description = "Target ALB requests per task per minute."
  type        = number
  default     = 1000
}

variable "admin_url" {
  description = "ADMIN_URL: path of the Django admin (keep it unguessable)."
  type        = string
  default     = "admin/"
}

variable "slo_availability" {
  description = "SLO_AVAILABILITY: percent of ALB requests answered without a 5XX (and within slo_latency_ms); the burn-rate alarms use it."
  type        = number
  default     = 99.9
  validation {
    condition     = var.slo_availability > 0 && var.slo_availability < 100
    error_message = "slo_availability is a percentage between 0 and 100 (exclusive)."
  }
}

variable "slo_latency_ms" {
  description = "SLO_LATENCY_MS: the latency objective, a request answered within this many milliseconds."
  type        = number
  default     = 500
}

variable "enable_burn_rate_pages" {
  description = "Composite alarms that page when both windows of a burn-rate rule burn (off only where PutCompositeAlarm is missing, e.g. moto)."
  type        = bool
  default     = true
}

variable "replica_max_lag" {
  description = "REPLICA_MAX_LAG: seconds of replica lag after which the app reads from the primary."
  type        = number
  default     = 5
}

variable "db_ca_bundle_path" {
  description = "DATABASE_SSLROOTCERT: path of the RDS CA bundle inside the image (the Dockerfile puts it here)."
  type        = string
  default     = "/app/certs/rds-global-bundle.pem"
}

# --- database ------------------------------------------------------------------------------------
variable "db_engine_version" {
  description = "PostgreSQL major version (minor upgrades are automatic)."
  type        = string
  default     = "16"
}

variable "db_instance_class" {
  description = "Instance class of the primary and of each replica."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_allocated_storage" {
  description = "Initial gp3 storage (GiB); storage autoscaling may grow it to db_max_allocated_storage."
  type        = number
  default     = 50
}

variable "db_max_allocated_storage" {
  description = "Upper limit of storage autoscaling (GiB)."
  type        = number
  default     = 200
}

variable "db_name" {
  description = "Database name."
  type        = string
  default     = "signup"
}

variable "db_username" {
  description = "Master user name, the owner of the schema: only the migration task logs in as it (its password is generated and kept in Secrets Manager by RDS)."
  type        = string
  default     = "signup"
}

variable "db_app_role" {
  description = "DATABASE_APP_ROLE: the role web and worker tasks connect as (DML only; created by manage.py setup_db_roles)."
  type        = string
  default     = "signup_app"
}

variable "replica_count" {
  description = "Number of read replicas (DATABASE_REPLICA_URLS). 0 in the moto run: see infra/README.md."
  type        = number
  default     = 1
  validation {
    condition     = var.replica_count >= 0 && var.replica_count <= 5
    error_message = "replica_count: 0 to 5."
  }
}

variable "enable_rds_proxy" {
  description = "Put an RDS Proxy in front of the primary (DATABASE_URL then points at the proxy)."
  type        = bool
  default     = false
}

variable "deletion_protection" {
  description = "Protect the database, the ALB, the ECR images, the log bucket and the secrets from deletion."
  type        = bool
  default     = true
}

variable "final_snapshot" {
  description = "Snapshot the primary (<name>-<environment>-db-final) when it is destroyed. Independent of deletion_protection, so turning that off to tear down keeps the data."
  type        = bool
  default     = true
}

# --- cache ---------------------------------------------------------------------------------------
variable "enable_elasticache" {
  description = "Create the Redis replication group. false only for moto, which lacks parts of the ElastiCache API."
  type        = bool
  default     = true
}

variable "cache_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.small"
}

variable "cache_engine_version" {
  description = "Redis OSS engine version."
  type        = string
  default     = "7.1"
}

# --- monitoring ----------------------------------------------------------------------------------
variable "alarm_email" {
  description = "E-mail address subscribed to the alarm topic (null = subscribe something yourself)."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Retention of every CloudWatch log group (app, proxy, worker, WAF, RDS, flow logs) and of the ALB access logs in S3; the privacy page states it (output log_retention_days)."
  type        = number
  default     = 30
  validation {
    # CloudWatch accepts only these values; the ALB log bucket expires objects after the same number.
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch retention value (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."
  }
}

variable "db_max_connections_alarm" {
  description = "DatabaseConnections above which the alarm fires (db.t4g.medium allows about 400)."
  type        = number
  default     = 300
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

# --- backups and the erasure ledger (backup.tf, ledger.tf) --------------------------------------------------------
variable "enable_aws_backup" {
  description = "AWS Backup plan, vault and weekly restore test of the primary. false only for moto, which has no backup selections or restore testing plans."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Days AWS Backup keeps recovery points (35 at most for continuous backups); the erasure ledger locks each entry as long."
  type        = number
  default     = 35
  validation {
    condition     = var.backup_retention_days >= 7 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be 7..35 (continuous backups last at most 35 days)."
  }
}

variable "restore_test_schedule" {
  description = "When AWS Backup restores the latest recovery point into a throwaway instance (restore testing plan)."
  type        = string
  default     = "cron(0 5 ? * MON *)"
}
