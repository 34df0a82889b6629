terraform {
  required_version = ">= 1.11.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}

locals {
  # aws_endpoint (moto in the tests) replaces every service endpoint this stack calls.
  local_endpoint = var.aws_endpoint != null
}

provider "aws" {
  region = var.region

  # A local stand-in (moto) has no real credentials, account lookup or instance metadata.
  skip_credentials_validation = local.local_endpoint
  skip_metadata_api_check     = local.local_endpoint
  skip_region_validation      = local.local_endpoint
  s3_use_path_style           = local.local_endpoint

  dynamic "endpoints" {
    for_each = local.local_endpoint ? [var.aws_endpoint] : []
    content {
      apigateway     = endpoints.value
      appautoscaling = endpoints.value
      autoscaling    = endpoints.value
      backup         = endpoints.value
      cloudwatch     = endpoints.value
      ec2            = endpoints.value
      ecr            = endpoints.value
      ecs            = endpoints.value
      elasticache    = endpoints.value
      elbv2          = endpoints.value
      iam            = endpoints.value
      kms            = endpoints.value
      logs           = endpoints.value
      rds            = endpoints.value
      route53        = endpoints.value
      s3             = endpoints.value
      scheduler      = endpoints.value
      secretsmanager = endpoints.value
      ses            = endpoints.value
      sesv2          = endpoints.value
      sns            = endpoints.value
      sqs            = endpoints.value
      ssm            = endpoints.value
      sts            = endpoints.value
      wafv2          = endpoints.value
    }
  }

  default_tags {
    tags = local.tags
  }
}
