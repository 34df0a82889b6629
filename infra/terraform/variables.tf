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

variable "app_min_count" {
  description = "Minimum (and initial) number of tasks; 2 keeps one per AZ."
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
  description = "Master user name (its password is generated and kept in Secrets Manager by RDS)."
  type        = string
  default     = "signup"
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
  description = "Retention of every CloudWatch log group."
  type        = number
  default     = 365
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
