"""Terraform on a throwaway copy of infra/terraform against moto, and readers of `terraform show -json`.

Terraform always runs on a temporary copy with its own TF_DATA_DIR and state, so nothing is written
into the source tree. The AWS provider comes from a local filesystem mirror (no registry access).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TF_DIR = ROOT / "infra" / "terraform"
CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PLUGIN_DIRS = ("/opt/tf-plugins", "/usr/local/share/tf-plugins", "/usr/share/tf-plugins", "~/.terraform.d/plugins")
# A region no other test uses, so the stack never shows up in the ops tests' moto data.
REGION = "ca-central-1"

# What moto cannot do, and how the moto run works around it (the same list is in docs/deployment.md):
MOTO_VARS = {
    "replica_count": 0,  # every instance gets the same DbiResourceId, so a replica's apply fails
    # no member clusters to read back, DeleteCacheSubnetGroup missing. Also proves that tasks get no
    # REDIS_URL secret without a value (ECS would not start them).
    "enable_elasticache": False,
    "enable_autoscaling": False,  # Application Auto Scaling has no ListTagsForResource
    "deletion_protection": False,  # so that destroy can run
    "enable_burn_rate_pages": False,  # moto has no PutCompositeAlarm (the window alarms are still applied)
    "enable_aws_backup": False,  # no CreateBackupSelection nor restore testing plans (planned: test_backup.py)
}
# Attributes moto accepts but never returns: without these every plan would set them again. A pending
# change on the primary would also defer the IAM policy documents that read its master_user_secret, so
# the task and proxy role policies would show as changing too.
MOTO_OVERRIDE = """
resource "aws_db_parameter_group" "main" {
  lifecycle { ignore_changes = [parameter] } # DescribeDBParameters omits Source
}
resource "aws_db_instance" "primary" {
  # DescribeDBInstances returns none of the PerformanceInsights* fields
  lifecycle {
    ignore_changes = [
      performance_insights_enabled, performance_insights_kms_key_id, performance_insights_retention_period,
    ]
  }
}
resource "aws_ecs_service" "app" {
  # DescribeServices returns neither healthCheckGracePeriodSeconds nor availabilityZoneRebalancing
  lifecycle { ignore_changes = [desired_count, health_check_grace_period_seconds, availability_zone_rebalancing] }
}
resource "aws_ecs_service" "worker" {
  lifecycle { ignore_changes = [availability_zone_rebalancing] } # the same gap
}
resource "aws_ses_configuration_set" "main" {
  # moto has no PutConfigurationSetDeliveryOptions (the SDK retries its 500 for ever), and its
  # DescribeConfigurationSet returns neither delivery nor reputation options
  dynamic "delivery_options" {
    for_each = []
    content {}
  }
  lifecycle { ignore_changes = [delivery_options, reputation_metrics_enabled] }
}
resource "aws_sns_topic" "ses_events" {
  # moto's GetTopicAttributes returns no SignatureVersion (the plan test checks the configured 2)
  lifecycle { ignore_changes = [signature_version] }
}
resource "aws_sesv2_email_identity" "domain" {
  # moto keeps the tags given to CreateEmailIdentity, but ListTagsForResource does not return them
  lifecycle { ignore_changes = [tags_all] }
}
""" + "".join(
    # moto keeps a rule's description only for CIDR peers, not for security-group peers
    f'resource "aws_vpc_security_group_{kind}_rule" "{name}" {{\n  lifecycle {{ ignore_changes = [description] }}\n}}\n'
    for kind, name in [
        ("egress", "alb_to_app"),
        ("ingress", "app_from_alb"),
        ("egress", "app_to_db"),
        ("egress", "app_to_proxy"),
        ("egress", "app_to_redis"),
        ("ingress", "db_from_app"),
        ("ingress", "db_from_proxy"),
        ("ingress", "proxy_from_app"),
        ("egress", "proxy_to_db"),
        ("ingress", "redis_from_app"),
    ]
)


# --- helpers --------------------------------------------------------------------------------------
def unavailable(reason: str) -> None:
    """Fail under CI (the toolchain is part of the contract there), skip elsewhere."""
    if CI:
        pytest.fail(reason)
    pytest.skip(reason)


def plugin_dir() -> Path | None:
    candidates = [os.environ.get("TF_PLUGIN_DIR", ""), *PLUGIN_DIRS]
    for candidate in filter(None, candidates):
        path = Path(candidate).expanduser()
        if (path / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
            return path
    return None


class Terraform:
    """terraform in a throwaway copy of infra/terraform, with fake credentials and no network."""

    def __init__(self, workdir: Path, plugin_dir: Path) -> None:
        self.dir = workdir / "tf"
        shutil.copytree(TF_DIR, self.dir, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*", "moto"))
        self.env = {
            **os.environ,
            "TF_DATA_DIR": str(workdir / "tf-data"),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
        }
        for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE"):
            self.env.pop(var, None)
        self.plugin_dir = plugin_dir

    def run(self, *args: str, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["terraform", f"-chdir={self.dir}", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            pytest.fail(f"terraform {args[0]} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return proc

    def init(self) -> None:
        self.run("init", "-backend=false", "-input=false", "-no-color", f"-plugin-dir={self.plugin_dir}")

    def write_vars(self, values: dict) -> str:
        path = self.dir / "test.auto.tfvars.json"
        path.write_text(json.dumps(values))
        return str(path)

    def output(self) -> dict:
        return {k: v["value"] for k, v in json.loads(self.run("output", "-json").stdout).items()}


def moto_certificate(moto_url: str) -> str:
    """An ACM certificate in moto for the HTTPS listener (moto's ELBv2 checks that it exists)."""
    import boto3

    acm = boto3.client(
        "acm",
        region_name=REGION,
        endpoint_url=moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return acm.request_certificate(DomainName="signup.example.test")["CertificateArn"]


def base_vars(moto_url: str) -> dict:
    return {
        "aws_endpoint": moto_url,
        "region": REGION,
        "certificate_arn": moto_certificate(moto_url),
        "domain_name": "signup.example.test",
        "image_tag": "test",
        "name": "tftest",
    }


def resources(plan: dict) -> dict[str, dict]:
    """address -> planned values, over the root module."""
    # Terraform leaves "values" out when every value is still unknown (a policy whose ARN is not yet known).
    return {r["address"]: r.get("values", {}) for r in plan["planned_values"]["root_module"].get("resources", [])}


def resource_ref(expression: dict) -> str:
    """The resource ("type.name") an expression refers to, whatever index or count.index it adds."""
    return next(ref for ref in expression["references"] if re.fullmatch(r"aws_\w+\.\w+", ref))


def policy(values: dict) -> dict[str, dict]:
    """Sid -> statement of a planned aws_iam_role_policy."""
    return {st.get("Sid", str(i)): st for i, st in enumerate(json.loads(values["policy"])["Statement"])}


def listed(value) -> list:
    return value if isinstance(value, list) else [value]


def containers(values: dict) -> dict[str, dict]:
    """name -> container definition of a planned aws_ecs_task_definition."""
    return {c["name"]: c for c in json.loads(values["container_definitions"])}


def env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("environment", [])}


def config(plan: dict, address: str) -> dict:
    return next(r for r in plan["configuration"]["root_module"]["resources"] if r["address"] == address)


def output(plan: dict, name: str) -> dict:
    """A map output as planned; keys whose value is only known after apply map to None."""
    change = plan["output_changes"][name]
    unknown = change.get("after_unknown")
    return {**dict.fromkeys(unknown if isinstance(unknown, dict) else {}), **(change.get("after") or {})}


def plan(tf: Terraform, values: dict) -> dict:
    """`terraform plan` with these variables; its `terraform show -json`."""
    tf.write_vars(values)
    tf.run("plan", "-input=false", "-no-color", "-out=tfplan")
    return json.loads(tf.run("show", "-json", "tfplan").stdout)


def planned_config(plan: dict) -> list[dict]:
    """The configuration's resource blocks that have at least one instance in the plan (count/for_each > 0)."""
    instances = {re.sub(r"\[[^\]]*\]$", "", address) for address in resources(plan)}
    return [r for r in plan["configuration"]["root_module"]["resources"] if r["address"] in instances]


def security_rules(plan: dict) -> set[tuple[str, str, int, str]]:
    """Every planned security-group rule: (group, direction, port, peer "sg:<group>", "pl:<endpoint>" or a CIDR)."""
    rules = set()
    for rule in planned_config(plan):
        if not rule["type"].startswith("aws_vpc_security_group_"):
            continue
        expr = rule["expressions"]
        if "referenced_security_group_id" in expr:
            peer = "sg:" + resource_ref(expr["referenced_security_group_id"]).split(".")[1]
        elif "prefix_list_id" in expr:
            peer = "pl:" + resource_ref(expr["prefix_list_id"]).split(".")[1]
        else:
            peer = expr["cidr_ipv4"]["constant_value"]
        group = resource_ref(expr["security_group_id"]).split(".")[1]
        direction = "ingress" if "ingress" in rule["type"] else "egress"
        rules.add((group, direction, expr["from_port"]["constant_value"], peer))
    return rules
