"""infra/terraform backup.tf and ledger.tf, planned against moto: backups restored on a schedule, failed
restores alarmed, and the erasure ledger in an Object Lock bucket nobody can delete from (issue 26)."""

from __future__ import annotations

import json

from tests.infra import tfplan as tp
from tests.infra.test_terraform import terraform  # noqa: F401 - the fixture


def _config_statements(plan: dict, name: str) -> dict[str, dict]:
    """Return a policy document's statements by sid, as configured: {"effect", "actions"}."""
    found = tp.config(plan, f"data.aws_iam_policy_document.{name}")["expressions"]["statement"]
    return {s["sid"]["constant_value"]: {"effect": s.get("effect", {}).get("constant_value", "Allow"),
                                         "actions": s["actions"]["constant_value"]} for s in found}  # fmt: skip


def test_plan_backs_up_the_primary_restores_it_weekly_and_alarms_on_failure(terraform, moto_server):  # noqa: F811
    plan = tp.plan(terraform, tp.base_vars(moto_server.url))
    res = tp.resources(plan)

    rule = res["aws_backup_plan.main[0]"]["rule"][0]
    assert rule["enable_continuous_backup"] and rule["lifecycle"][0]["delete_after"] == 35
    selection = tp.config(plan, "aws_backup_selection.database")["expressions"]
    assert "aws_db_instance.primary" in selection["resources"]["references"]
    testing = res["aws_backup_restore_testing_plan.database[0]"]
    assert testing["schedule_expression"] == "cron(0 5 ? * MON *)"
    assert testing["recovery_point_selection"][0]["algorithm"] == "LATEST_WITHIN_WINDOW"
    restore = res["aws_backup_restore_testing_selection.database[0]"]
    assert restore["protected_resource_type"] == "RDS" and restore["validation_window_hours"] == 4
    assert "dbsubnetgroupname" in restore["restore_metadata_overrides"]
    alarm = res['aws_cloudwatch_metric_alarm.backup["restore-failed"]']
    assert (alarm["namespace"], alarm["metric_name"], alarm["threshold"]) == (
        "AWS/Backup",
        "NumberOfRestoreJobsFailed",
        0,
    )
    actions = tp.config(plan, "aws_cloudwatch_metric_alarm.backup")["expressions"]["alarm_actions"]["references"]
    assert "aws_sns_topic.alarms.arn" in actions


def test_plan_keeps_the_erasure_ledger_locked_encrypted_and_undeletable(terraform, moto_server):  # noqa: F811
    plan = tp.plan(terraform, tp.base_vars(moto_server.url))
    res = tp.resources(plan)

    assert res["aws_s3_bucket.ledger"]["object_lock_enabled"] is True
    lock = res["aws_s3_bucket_object_lock_configuration.ledger"]["rule"][0]["default_retention"][0]
    assert (lock["mode"], lock["days"]) == ("COMPLIANCE", 35)
    sse = tp.config(plan, "aws_s3_bucket_server_side_encryption_configuration.ledger")["expressions"]
    assert "aws_kms_key.ledger.arn" in json.dumps(sse)
    assert res["aws_kms_key.ledger"]["enable_key_rotation"]
    # The bucket policy denies every delete to everyone; the app's roles are never allowed one (the documents
    # name the bucket's ARN, known after apply: read from the configuration).
    deny = _config_statements(plan, "ledger_bucket")["NobodyDeletes"]
    assert deny["effect"] == "Deny" and {"s3:DeleteObject", "s3:DeleteObjectVersion"} <= set(deny["actions"])
    app = _config_statements(plan, "ledger_app")
    assert {"s3:PutObject", "s3:GetObject"} <= set(app["LedgerReadAdd"]["actions"])
    assert _config_statements(plan, "ledger_list")["LedgerList"]["actions"] == ["s3:ListBucket"]
    for name in ("ledger_app", "ledger_list"):
        assert not [a for s in _config_statements(plan, name).values() for a in s["actions"] if "Delete" in a]
    sources = {name: json.dumps(tp.config(plan, f"data.aws_iam_policy_document.{name}")["expressions"])
               for name in ("worker", "task")}  # fmt: skip
    assert (
        "ledger_app" in sources["worker"] and "ledger_list" in sources["task"] and "ledger_app" not in sources["task"]
    )
    env = tp.output(plan, "app_environment")
    assert env["ERASURE_LEDGER_RETAIN_DAYS"] == "35"
    assert "ERASURE_LEDGER_KEY" in tp.output(plan, "app_secrets")
