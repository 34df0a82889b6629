"""infra/terraform: formatted, valid and checkov-clean offline; planned, applied and destroyed against moto.

How Terraform runs (a throwaway copy, the provider mirror, what moto lacks) is in tests/infra/tfplan.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.infra import tfplan as tp
from tests.infra.tfplan import MOTO_OVERRIDE, MOTO_VARS, REGION, TF_DIR, Terraform

CHECKOV = TF_DIR.parents[1] / ".venv-checkov" / "bin" / "checkov"

# Every variable the app reads that Terraform must provide (plain environment or ECS secret).
APP_ENVIRONMENT = {
    "DATABASE_URL",
    "DATABASE_REPLICA_URLS",
    "DATABASE_IAM_AUTH",
    "DATABASE_SSLMODE",
    "DATABASE_SSLROOTCERT",
    "ALLOWED_HOSTS",
    "ADMIN_URL",
    "TRUSTED_PROXY_COUNT",
    "AWS_REGION",
    "AWS_STORAGE_BUCKET_NAME",
    "OPS_ALB",
    "OPS_TARGET_GROUP",
    "OPS_ASG",
    "OPS_EC2_INSTANCES",
    "OPS_ECS_CLUSTER",
    "OPS_ECS_SERVICE",
    "OPS_RDS_INSTANCES",
    "OPS_CACHE_CLUSTER",
    "OPS_RDS_PROXY",
    "OPS_ALARM_PREFIX",
    "REPLICA_MAX_LAG",
    "EMAIL_PROVIDER",
    "EMAIL_FROM",
    "SES_CONFIGURATION_SET",
    "SES_EVENTS_TOPIC_ARN",
    "PUBLIC_BASE_URL",
    "LOG_RETENTION_DAYS",
    "ERASURE_LEDGER_BUCKET",
    "ERASURE_LEDGER_RETAIN_DAYS",
}
APP_SECRETS = {"SECRET_KEY", "REDIS_URL", "ERASURE_LEDGER_KEY", "WEBHOOK_SECRET_KEYS"}
ACCOUNT = "123456789012"  # moto's account
# PostgreSQL's log goes to CloudWatch: no statement text, no parameters, no DETAIL (issue 12, item 3).
LOG_PARAMETERS = {
    "log_error_verbosity": "terse",
    "log_min_error_statement": "panic",
    "log_statement": "none",
    "log_min_duration_statement": "-1",
    "log_parameter_max_length": "0",
    "log_parameter_max_length_on_error": "0",
    "log_connections": "1",
}

# The production shape the plans use (tests/infra/test_variants.py plans the other variants in it).
PRODUCTION = {"replica_count": 2, "enable_rds_proxy": True, "app_cpu": 1024, "app_memory": 2048}

# Every security-group rule of the stack: (group, direction, port, peer). Nothing else may exist.
EXPECTED_RULES = {
    ("alb", "ingress", 443, "0.0.0.0/0"),
    ("alb", "ingress", 80, "0.0.0.0/0"),
    ("alb", "egress", 8000, "sg:app"),
    ("app", "ingress", 8000, "sg:alb"),
    ("app", "egress", 5432, "sg:db"),
    ("app", "egress", 5432, "sg:proxy"),
    ("app", "egress", 6379, "sg:redis"),
    ("app", "egress", 443, "0.0.0.0/0"),
    ("db", "ingress", 5432, "sg:app"),
    ("db", "ingress", 5432, "sg:proxy"),
    ("proxy", "ingress", 5432, "sg:app"),
    ("proxy", "egress", 5432, "sg:db"),
    ("redis", "ingress", 6379, "sg:app"),
}


# --- fixtures -------------------------------------------------------------------------------------
@pytest.fixture
def terraform(toolchain: Path, tmp_path: Path) -> Terraform:
    tf = Terraform(tmp_path, toolchain)
    tf.init()
    return tf


# --- offline --------------------------------------------------------------------------------------
def test_terraform_is_formatted(toolchain):
    proc = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", str(TF_DIR)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, f"terraform fmt would change:\n{proc.stdout}{proc.stderr}"


def test_terraform_validates_offline(terraform):
    result = json.loads(terraform.run("validate", "-json", check=False).stdout)
    errors = [d["summary"] for d in result["diagnostics"] if d["severity"] == "error"]
    assert result["valid"] and not errors, errors


# What checkov checks depends on the variables it is given (CKV_AWS_237 only with private_ingress): scan each.
@pytest.mark.parametrize("compute", ["ecs", "ec2"])
@pytest.mark.parametrize("private_ingress", [False, True], ids=["public", "private"])
def test_checkov_passes_with_every_skip_justified(compute, private_ingress, tmp_path):
    if not CHECKOV.exists():
        tp.unavailable("checkov is not installed: run `make infra-tools`")
    var_file = tmp_path / "variant.tfvars.json"
    var_file.write_text(json.dumps({"compute": compute, "private_ingress": private_ingress}))
    proc = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(TF_DIR),
            "--framework",
            "terraform",
            "--skip-download",
            "-o",
            "json",
            "--var-file",
            str(var_file),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    report = json.loads(proc.stdout)
    report = report[0] if isinstance(report, list) else report
    summary, results = report["summary"], report["results"]
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in results["failed_checks"]]
    assert summary["failed"] == 0, "checkov failed:\n" + "\n".join(failed)
    assert summary["passed"] > 300  # the scan really covered the stack
    unexplained = [c["check_id"] for c in results["skipped_checks"] if not c["check_result"].get("suppress_comment")]
    assert not unexplained, f"skips without a reason: {unexplained}"


# --- against moto ---------------------------------------------------------------------------------
def test_plan_against_moto_wires_the_whole_stack(terraform, moto_server):
    """Plan the production shape (replicas, proxy, Redis, auto scaling) and check how it is wired."""
    plan = tp.plan(terraform, {**tp.base_vars(moto_server.url), **PRODUCTION})
    res = tp.resources(plan)

    for address in (
        "aws_db_instance.replica[1]",
        "aws_db_proxy.main[0]",
        "aws_elasticache_replication_group.redis[0]",
        "aws_appautoscaling_policy.cpu[0]",
        "aws_appautoscaling_policy.requests[0]",
        "aws_wafv2_web_acl_association.alb[0]",
        "aws_flow_log.vpc",
        "aws_ecs_service.worker",
        "aws_scheduler_schedule.purge",
        "aws_secretsmanager_secret_version.redis_url[0]",
    ):
        assert address in res, f"{address} missing from the plan"

    env = tp.output(plan, "app_environment")
    assert env.keys() >= APP_ENVIRONMENT, APP_ENVIRONMENT - env.keys()
    assert set(tp.output(plan, "app_secrets")) == APP_SECRETS
    assert env["DATABASE_SSLMODE"] == "verify-full"
    assert env["TRUSTED_PROXY_COUNT"] == "1"
    assert env["OPS_RDS_INSTANCES"] == "tftest-prod-db,tftest-prod-db-replica-1,tftest-prod-db-replica-2"
    assert (env["EMAIL_PROVIDER"], env["EMAIL_FROM"]) == ("ses", "no-reply@signup.example.test")
    assert env["PUBLIC_BASE_URL"] == "https://signup.example.test"
    assert env["LOG_RETENTION_DAYS"] == str(plan["output_changes"]["log_retention_days"]["after"])  # /privacy/ says it
    assert env["SES_CONFIGURATION_SET"] == "tftest-prod-mail"
    assert env["DATABASE_SERVER_BINDING"] == "0"  # behind RDS Proxy: no prepared statements (they pin)

    # Behind RDS Proxy the app role logs in with its own password (no IAM end to end in provider 5.100).
    tasks = plan["output_changes"]["task_environment"]["after"]
    secrets = plan["output_changes"]["task_secrets"]["after_unknown"]  # ARNs: known after apply
    web, migrate = tasks["web"], tasks["migrate"]
    assert web["DATABASE_IAM_AUTH"] == "0" and "DATABASE_SECRET_ARN" in tp.output(plan, "app_environment")
    assert plan["output_changes"]["task_secrets"]["after"]["migrate"].keys() | secrets["migrate"].keys() >= {
        "SECRET_KEY",
        "REDIS_URL",
        "DATABASE_APP_PASSWORD",
    }
    assert migrate["DATABASE_APP_ROLE"] == "signup_app" and migrate["DATABASE_IAM_AUTH"] == "0"
    # gunicorn sized from the task's CPU: 1024 units = 1 vCPU -> 2 x 1 + 1 processes; gunicorn on loopback.
    assert (web["WEB_CONCURRENCY"], web["GUNICORN_THREADS"]) == ("3", "4")
    assert (web["PORT"], web["HOST"]) == ("8001", "127.0.0.1")
    assert "PORT" not in tasks["worker"] and "WEB_CONCURRENCY" not in tasks["worker"]
    assert res["aws_ecs_task_definition.app"]["cpu"] == "1024"

    db = res["aws_db_instance.primary"]
    assert db["multi_az"] and db["storage_encrypted"] and db["deletion_protection"]
    assert db["manage_master_user_password"] and db["performance_insights_enabled"]
    assert db["backup_retention_period"] == 7 and db["monitoring_interval"] == 60
    assert db["iam_database_authentication_enabled"]
    params = {p["name"]: p["value"] for p in res["aws_db_parameter_group.main"]["parameter"]}
    assert params["rds.force_ssl"] == "1"
    assert {k: params.get(k) for k in LOG_PARAMETERS} == LOG_PARAMETERS
    proxy_auth = res["aws_db_proxy.main[0]"]["auth"][0]
    assert (proxy_auth["auth_scheme"], proxy_auth["iam_auth"]) == ("SECRETS", "DISABLED")
    assert tp.config(plan, "aws_db_proxy.main")["expressions"]["auth"][0]["secret_arn"]["references"][-1] == (
        "aws_secretsmanager_secret.db_app"
    )

    redis = res["aws_elasticache_replication_group.redis[0]"]
    assert redis["multi_az_enabled"] and redis["automatic_failover_enabled"]
    assert redis["transit_encryption_enabled"] and redis["at_rest_encryption_enabled"]

    # The ALB checks /health (nothing outside the task) and answers /ready itself with a 404.
    tg = res["aws_lb_target_group.app"]
    assert tg["health_check"][0]["path"] == "/health" and tg["deregistration_delay"] == "30"
    rule = res["aws_lb_listener_rule.hide_ready"]
    assert set(rule["condition"][0]["path_pattern"][0]["values"]) == {"/ready", "/ready/*"}
    assert rule["action"][0]["type"] == "fixed-response"
    assert rule["action"][0]["fixed_response"][0]["status_code"] == "404"
    assert tp.resource_ref(tp.config(plan, "aws_lb_listener_rule.hide_ready")["expressions"]["listener_arn"]) == (
        "aws_lb_listener.https"
    )
    redirect = res["aws_lb_listener.http"]["default_action"][0]["redirect"][0]
    assert (redirect["protocol"], redirect["status_code"]) == ("HTTPS", "HTTP_301")
    web_lb = res["aws_ecs_service.app[0]"]["load_balancer"][0]
    assert (web_lb["container_name"], web_lb["container_port"]) == ("proxy", 8000)
    assert not res["aws_ecs_service.worker"]["load_balancer"]

    # WAF logs keep no cookies or bearer tokens (nor paths or Referers: test_log_access.py); every log group
    # is bounded and encrypted, replicas' too.
    redacted = res["aws_wafv2_web_acl_logging_configuration.main[0]"]["redacted_fields"]
    assert {f["single_header"][0]["name"] for f in redacted if f["single_header"]} >= {"cookie", "authorization"}
    groups = {a: v for a, v in res.items() if a.startswith("aws_cloudwatch_log_group.")}
    assert {g["retention_in_days"] for g in groups.values()} == {30}
    assert {g["name"] for g in groups.values()} >= {
        f"/aws/rds/instance/tftest-prod-db{suffix}/{log}"
        for suffix in ("", "-replica-1", "-replica-2")
        for log in ("postgresql", "upgrade")
    }
    for group in plan["configuration"]["root_module"]["resources"]:
        if group["type"] == "aws_cloudwatch_log_group":
            assert tp.resource_ref(group["expressions"]["kms_key_id"]) == "aws_kms_key.main", group["address"]
    assert plan["output_changes"]["log_retention_days"]["after"] == 30
    assert res["aws_s3_bucket_lifecycle_configuration.logs"]["rule"][0]["expiration"][0]["days"] == 30

    # SES: the domain identity (DKIM), its configuration set, events -> SNS -> the webhook over HTTPS.
    assert res["aws_sesv2_email_identity.domain"]["email_identity"] == "signup.example.test"
    assert res["aws_sesv2_email_identity.domain"]["configuration_set_name"] == "tftest-prod-mail"
    assert res["aws_ses_configuration_set.main"]["delivery_options"][0]["tls_policy"] == "Require"
    events = res["aws_ses_event_destination.sns"]
    assert set(events["matching_types"]) == {"bounce", "complaint", "delivery"} and events["enabled"]
    sub = res["aws_sns_topic_subscription.ses_webhook"]
    assert (sub["protocol"], sub["endpoint"]) == ("https", "https://signup.example.test/webhooks/ses/")
    assert not sub["raw_message_delivery"]
    # SHA256 signatures only; retries within AWS's 3,600 s cap (and the webhook's hour); then a dead-letter
    # queue SNS alone may write to, encrypted, whose first message alarms.
    assert res["aws_sns_topic.ses_events"]["signature_version"] == 2
    retry = json.loads(sub["delivery_policy"])["healthyRetryPolicy"]
    assert retry["numRetries"] >= 10 and retry["maxDelayTarget"] <= 3600 and retry["backoffFunction"] == "exponential"
    redrive = tp.config(plan, "aws_sns_topic_subscription.ses_webhook")["expressions"]["redrive_policy"]
    assert "aws_sqs_queue.ses_events_dlq" in redrive["references"]
    dlq = res["aws_sqs_queue.ses_events_dlq"]
    assert dlq["message_retention_seconds"] == 1209600
    assert tp.resource_ref(tp.config(plan, "aws_sqs_queue.ses_events_dlq")["expressions"]["kms_master_key_id"]) == (
        "aws_kms_key.main"
    )
    alarm = res["aws_cloudwatch_metric_alarm.ses_events_dead_letters"]
    assert (alarm["namespace"], alarm["metric_name"], alarm["threshold"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        0,
    )
    assert alarm["dimensions"] == {"QueueName": "tftest-prod-ses-events-dlq"}

    # The purge: daily, on Fargate in the app subnets, its own task definition and role; off until switched on.
    schedule = res["aws_scheduler_schedule.purge"]
    assert schedule["state"] == "DISABLED"  # var.enable_purge_schedule defaults to false
    assert schedule["schedule_expression"] == "cron(30 3 * * ? *)"
    assert schedule["target"][0]["ecs_parameters"][0]["launch_type"] == "FARGATE"
    target = tp.config(plan, "aws_scheduler_schedule.purge")["expressions"]["target"][0]
    assert 'aws_ecs_task_definition.job["purge"]' in target["ecs_parameters"][0]["task_definition_arn"]["references"]

    # Internet routes: public -> internet gateway, app -> NAT. The data tier's table gets none at all.
    config = plan["configuration"]["root_module"]["resources"]
    routes = {
        r["name"]: tp.resource_ref(r["expressions"]["route_table_id"]) for r in config if r["type"] == "aws_route"
    }
    assert routes == {"public_internet": "aws_route_table.public", "app_nat": "aws_route_table.app"}
    data_table = next(r for r in config if r["address"] == "aws_route_table.data")
    assert "route" not in data_table["expressions"]

    groups = {a.split(".")[1].split("[")[0]: a for a in res if a.startswith("aws_security_group.")}
    assert set(groups) == {"alb", "app", "db", "redis", "proxy"}
    rules = tp.security_rules(plan)
    assert rules == EXPECTED_RULES
    inline = [r["address"] for r in config if r["type"] in {"aws_security_group", "aws_default_security_group"}]
    assert not [
        a for a in inline if {"ingress", "egress"} & next(r for r in config if r["address"] == a)["expressions"].keys()
    ]
    assert not [a for a in res if a.startswith("aws_security_group_rule.")]


@pytest.mark.slow
def test_apply_then_replan_shows_no_changes_then_destroy(terraform, moto_server):
    """Create everything moto can (the default shape: IAM auth, no proxy), prove a second plan is empty
    and check what it holds, then tear it all down."""
    import boto3

    terraform.write_vars({**tp.base_vars(moto_server.url), **MOTO_VARS})
    (terraform.dir / "moto_override.tf").write_text(MOTO_OVERRIDE)
    timings = {}
    try:
        start = time.monotonic()
        terraform.run("apply", "-input=false", "-no-color", "-auto-approve", "-parallelism=20", timeout=900)
        timings["apply"] = time.monotonic() - start

        out = terraform.output()
        assert out["OPS_ALB"].startswith("app/tftest-prod-alb/")
        assert out["OPS_TARGET_GROUP"].startswith("targetgroup/tftest-prod-app/")
        assert out["DATABASE_URL"].startswith("postgres://signup_app@tftest-prod-db.")
        assert (out["DATABASE_IAM_AUTH"], out["DATABASE_SECRET_ARN"], out["OPS_RDS_PROXY"]) == ("1", "", "")
        assert out["AWS_STORAGE_BUCKET_NAME"] == "tftest-prod-assets-123456789012"
        assert out["log_retention_days"] == 30

        # What the provider reads back through the override above is checked here, in moto itself.
        kw = {"region_name": REGION, "endpoint_url": moto_server.url}
        kw |= {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        rds = boto3.client("rds", **kw)
        params = rds.describe_db_parameters(DBParameterGroupName="tftest-prod-postgres16")["Parameters"]
        params = {p["ParameterName"]: p["ParameterValue"] for p in params}
        assert params["rds.force_ssl"] == "1"
        assert {k: params.get(k) for k in LOG_PARAMETERS} == LOG_PARAMETERS
        elb = boto3.client("elbv2", **kw)
        tg = elb.describe_target_groups(Names=["tftest-prod-app"])["TargetGroups"][0]
        assert (tg["HealthCheckPath"], tg["HealthyThresholdCount"], tg["UnhealthyThresholdCount"]) == ("/health", 2, 3)

        # Every secret a task definition injects has a value: otherwise ECS cannot start the task.
        secretsmanager = boto3.client("secretsmanager", **kw)
        ecs = boto3.client("ecs", **kw)
        for family in ("app", "worker", "purge", "migrate"):
            task = ecs.describe_task_definition(taskDefinition=f"tftest-prod-{family}")["taskDefinition"]
            for container in task["containerDefinitions"]:
                for secret in container.get("secrets", []):
                    arn = secret["valueFrom"].removesuffix(":password::")
                    assert secretsmanager.get_secret_value(SecretId=arn)["SecretString"], secret["name"]

        start = time.monotonic()
        replan = terraform.run("plan", "-input=false", "-no-color", "-detailed-exitcode", "-out=replan", check=False)
        timings["plan"] = time.monotonic() - start
        assert replan.returncode == 0, f"second plan is not empty:\n{replan.stdout[-6000:]}{replan.stderr[-2000:]}"
        _check_applied_stack(tp.resources(json.loads(terraform.run("show", "-json", "replan").stdout)))
    finally:
        # moto has no DeleteConfigurationSetEventDestination: forget the destination, and the destroy of
        # its configuration set drops it (as SES itself does).
        terraform.run("state", "rm", "aws_ses_event_destination.sns", check=False)
        start = time.monotonic()
        destroy = terraform.run("destroy", "-input=false", "-no-color", "-auto-approve", "-parallelism=20", check=False)
        timings["destroy"] = time.monotonic() - start
        print("terraform against moto:", {k: f"{v:.0f}s" for k, v in timings.items()})
    assert destroy.returncode == 0, destroy.stdout[-4000:] + destroy.stderr[-4000:]
    assert terraform.run("state", "list").stdout.strip() == ""


def _check_applied_stack(res: dict[str, dict]) -> None:
    """Task definitions, roles and the schedule as applied (the no-change plan holds every value)."""
    assert "aws_secretsmanager_secret.redis_url[0]" not in res  # no ElastiCache: no REDIS_URL at all

    # The web task: nginx on 8000 in front of gunicorn on loopback 8001, sized for 0.5 vCPU.
    app = tp.containers(res["aws_ecs_task_definition.app"])
    assert set(app) == {"app", "proxy"}
    web = tp.env(app["app"])
    assert (web["PORT"], web["HOST"], web["WEB_CONCURRENCY"], web["GUNICORN_THREADS"]) == (
        "8001",
        "127.0.0.1",
        "2",
        "4",
    )
    assert web["TRUSTED_PROXY_COUNT"] == "1"
    assert "8001/health" in " ".join(app["app"]["healthCheck"]["command"])
    assert "portMappings" not in app["app"] or not app["app"]["portMappings"]
    proxy = app["proxy"]
    assert proxy["image"].endswith(":test-proxy") and proxy["portMappings"][0]["containerPort"] == 8000
    assert proxy["dependsOn"] == [{"containerName": "app", "condition": "HEALTHY"}]
    assert proxy["logConfiguration"]["options"]["awslogs-group"] == "/tftest-prod/proxy"
    assert proxy["readonlyRootFilesystem"]

    # Web, worker and purge connect as the app role with IAM tokens; only the migration is the owner.
    jobs = {
        name: tp.containers(res[f'aws_ecs_task_definition.job["{name}"]'])[name]
        for name in ("worker", "purge", "migrate")
    }
    assert jobs["worker"]["command"] == ["python", "manage.py", "worker"]
    assert jobs["purge"]["command"] == ["python", "manage.py", "purge"]
    assert jobs["migrate"]["command"][-1] == "python manage.py migrate --noinput && python manage.py setup_db_roles"
    assert jobs["worker"]["logConfiguration"]["options"]["awslogs-group"] == "/tftest-prod/worker"
    for name, env in {"web": web, "worker": tp.env(jobs["worker"]), "purge": tp.env(jobs["purge"])}.items():
        assert env["DATABASE_URL"].startswith("postgres://signup_app@tftest-prod-db."), name
        assert env["DATABASE_IAM_AUTH"] == "1" and "DATABASE_SECRET_ARN" not in env, name
        assert env["EMAIL_PROVIDER"] == "ses" and env["SES_EVENTS_TOPIC_ARN"].endswith(":tftest-prod-ses-events"), name
    migrate = tp.env(jobs["migrate"])
    assert migrate["DATABASE_URL"].startswith("postgres://signup@tftest-prod-db.")
    assert (migrate["DATABASE_IAM_AUTH"], migrate["DATABASE_APP_ROLE"]) == ("0", "signup_app")
    owner_secret = res["aws_db_instance.primary"]["master_user_secret"][0]["secret_arn"]
    assert migrate["DATABASE_SECRET_ARN"] == owner_secret
    for container in [*app.values(), *jobs.values()]:
        assert {s["name"] for s in container.get("secrets", [])} <= {
            "SECRET_KEY",
            "ERASURE_LEDGER_KEY",
            "WEBHOOK_SECRET_KEYS",
        }, container["name"]

    # IAM: DescribeDBInstances on db:* (Filters are authorized against db:*); rds-db:connect as the app
    # role on the instance's resource id; SES only for the worker, only this identity and set.
    task = tp.policy(res["aws_iam_role_policy.task"])
    assert task["OpsDescribeDatabases"]["Action"] == "rds:DescribeDBInstances"
    assert task["OpsDescribeDatabases"]["Resource"] == f"arn:aws:rds:{REGION}:{ACCOUNT}:db:*"
    resource_id = res["aws_db_instance.primary"]["resource_id"]
    connect = f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:{resource_id}/signup_app"
    worker = tp.policy(res["aws_iam_role_policy.worker"])
    for policy in (task, worker):
        assert policy["DatabaseConnectAsAppRole"]["Action"] == "rds-db:connect"
        assert tp.listed(policy["DatabaseConnectAsAppRole"]["Resource"]) == [connect]
        assert owner_secret not in json.dumps(policy)
    assert "ses:" not in json.dumps(task)
    send = worker["SendEmailAsTheDomain"]
    # The erasure ledger: the web tasks list it, the worker also reads and adds; nobody may delete.
    ledger = f"arn:aws:s3:::tftest-prod-erasure-ledger-{ACCOUNT}"
    assert task["LedgerList"]["Resource"] == ledger and "LedgerReadAdd" not in task
    assert set(tp.listed(worker["LedgerReadAdd"]["Action"])) == {
        "s3:GetObject",
        "s3:PutObject",
        "s3:PutObjectRetention",
    }
    assert "s3:Delete" not in json.dumps(worker["LedgerReadAdd"]) + json.dumps(task["LedgerList"])
    assert set(tp.listed(send["Action"])) == {"ses:SendEmail", "ses:SendRawEmail"}
    assert set(tp.listed(send["Resource"])) == {
        res["aws_sesv2_email_identity.domain"]["arn"],
        res["aws_ses_configuration_set.main"]["arn"],
    }
    assert send["Condition"] == {"StringEquals": {"ses:FromAddress": "no-reply@signup.example.test"}}
    assert owner_secret in json.dumps(tp.policy(res["aws_iam_role_policy.migrate"]))

    # The scheduler runs exactly the purge task definition and passes exactly its two roles.
    purge_arn = res['aws_ecs_task_definition.job["purge"]']["arn"]
    schedule = res["aws_scheduler_schedule.purge"]["target"][0]
    assert schedule["ecs_parameters"][0]["task_definition_arn"] == purge_arn
    assert schedule["arn"] == res["aws_ecs_cluster.main"]["arn"]
    scheduler = tp.policy(res["aws_iam_role_policy.scheduler"])
    assert (scheduler["RunThePurgeTask"]["Action"], scheduler["RunThePurgeTask"]["Resource"]) == (
        "ecs:RunTask",
        purge_arn,
    )
    assert set(tp.listed(scheduler["PassThePurgeTaskRoles"]["Resource"])) == {
        res["aws_iam_role.execution"]["arn"],
        res["aws_iam_role.purge"]["arn"],
    }
    assert res['aws_ecs_task_definition.job["purge"]']["task_role_arn"] == res["aws_iam_role.purge"]["arn"]
    # The purge's own role reaches the database and sends nothing; the web role only reads the assets.
    purge = tp.policy(res["aws_iam_role_policy.purge"])
    assert purge["DatabaseConnectAsAppRole"]["Action"] == "rds-db:connect" and "ses:" not in json.dumps(purge)
    assert tp.listed(task["AssetsObjects"]["Action"]) == ["s3:GetObject"]
    assert not {"s3:PutObject", "s3:DeleteObject", "kms:GenerateDataKey"} & set(json.dumps(task).split('"'))
    assert res["aws_ecs_service.worker"]["task_definition"] == res['aws_ecs_task_definition.job["worker"]']["arn"]


def test_the_purge_schedule_is_switched_on_only_by_its_variable(terraform, moto_server):
    plan = tp.plan(terraform, {**tp.base_vars(moto_server.url), "enable_purge_schedule": True})
    assert tp.resources(plan)["aws_scheduler_schedule.purge"]["state"] == "ENABLED"
