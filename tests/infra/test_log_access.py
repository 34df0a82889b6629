"""Logs that can hold a link's token keep it to themselves (issue 23, finding 3), planned against moto.

- WAF logs redact the URI path, the query string and the Referer (besides cookies and bearer tokens), and
  keep only the requests a rule blocked or counted.
- The ALB/S3 access-log bucket: its objects are readable by the log-reader role alone (the bucket policy
  denies s3:GetObject to every other principal, administrators included), while the ALB's log delivery keeps
  its s3:PutObject. The policy is known at plan time (both ARNs are spelled out), so it is checked here as
  IAM evaluates it: an explicit Deny wins over any Allow.
"""

from __future__ import annotations

import fnmatch
import json

import pytest

from tests.infra import tfplan as tp
from tests.infra.test_terraform import ACCOUNT, PRODUCTION
from tests.infra.tfplan import Terraform

NAME = "tftest-prod"
BUCKET = f"arn:aws:s3:::{NAME}-logs-{ACCOUNT}"
READER = f"arn:aws:iam::{ACCOUNT}:role/{NAME}-log-reader"
ALB_LOG = f"{BUCKET}/alb/AWSLogs/{ACCOUNT}/elasticloadbalancing/ca-central-1/2026/12/06/one.log.gz"


@pytest.fixture(scope="module")
def planned(toolchain, moto_server, tmp_path_factory):
    tf = Terraform(tmp_path_factory.mktemp("log-access"), toolchain)
    tf.init()
    plan = tp.plan(tf, {**tp.base_vars(moto_server.url), **PRODUCTION})
    return plan, tp.resources(plan)


def _statements(document: str) -> list[dict]:
    return json.loads(document)["Statement"]


def _matches(patterns, value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in tp.listed(patterns))


def _denied(statements: list[dict], principal: str, action: str, resource: str, secure: bool = True) -> bool:
    """Whether an explicit Deny of the bucket policy applies (the conditions this policy uses, evaluated)."""
    for st in statements:
        if st["Effect"] != "Deny" or not _matches(st["Action"], action) or not _matches(st["Resource"], resource):
            continue
        condition = st.get("Condition", {})
        if "ArnNotEquals" in condition and principal in tp.listed(condition["ArnNotEquals"]["aws:PrincipalArn"]):
            continue
        if "Bool" in condition and (condition["Bool"]["aws:SecureTransport"] == "false") == secure:
            continue
        assert set(condition) <= {"ArnNotEquals", "Bool"}, f"a condition this test cannot evaluate: {condition}"
        return True
    return False


def _allowed_for(statements: list[dict], principal: dict, action: str, resource: str) -> bool:
    return any(
        st["Effect"] == "Allow" and st["Principal"] == principal and _matches(st["Action"], action)
        and _matches(st["Resource"], resource)
        for st in statements
    )  # fmt: skip


def test_waf_logs_redact_the_path_query_and_referer_and_keep_only_rule_matches(planned):
    _, res = planned
    logging = res["aws_wafv2_web_acl_logging_configuration.main[0]"]
    redacted = set()
    for field in logging["redacted_fields"]:
        redacted |= {f"header:{h['name']}" for h in field.get("single_header", [])}
        redacted |= {kind for kind in ("uri_path", "query_string", "method") if field.get(kind)}
    assert redacted == {"uri_path", "query_string", "header:referer", "header:cookie", "header:authorization"}
    (log_filter,) = logging["logging_filter"]
    assert log_filter["default_behavior"] == "DROP"
    (keep,) = log_filter["filter"]
    assert (keep["behavior"], keep["requirement"]) == ("KEEP", "MEETS_ANY")
    kept = {c["action_condition"][0]["action"] for c in keep["condition"]}
    assert kept == {"BLOCK", "COUNT", "EXCLUDED_AS_COUNT"}


def test_only_the_log_reader_role_may_read_the_access_logs(planned):
    _, res = planned
    assert res["aws_s3_bucket.logs"]["bucket"] == BUCKET.rsplit(":", 1)[1]
    policy = _statements(res["aws_s3_bucket_policy.logs"]["policy"])  # known at plan time
    for action in ("s3:GetObject", "s3:GetObjectVersion"):
        assert not _denied(policy, READER, action, ALB_LOG)
        for other in (f"arn:aws:iam::{ACCOUNT}:root", f"arn:aws:iam::{ACCOUNT}:role/{NAME}-task",
                      f"arn:aws:iam::{ACCOUNT}:role/OrganizationAccountAccessRole",
                      f"arn:aws:iam::{ACCOUNT}:user/admin", "arn:aws:iam::999999999999:role/elsewhere"):  # fmt: skip
            assert _denied(policy, other, action, ALB_LOG), (other, action)
    assert _denied(policy, READER, "s3:GetObject", ALB_LOG, secure=False)  # plain HTTP: refused even to it
    # The ALB still delivers its logs (the regional ELB account and the log-delivery service), and nothing denies it.
    delivery = {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}
    assert _allowed_for(policy, delivery, "s3:PutObject", ALB_LOG)
    assert not _denied(policy, "logdelivery.elasticloadbalancing.amazonaws.com", "s3:PutObject", ALB_LOG)
    assert any(st["Sid"] == "AlbAccessLogs" and st["Action"] == "s3:PutObject" for st in policy)

    # The role: assumable from this account with MFA only; it may list and read this bucket and nothing more.
    role = res["aws_iam_role.log_reader"]
    assert role["name"] == f"{NAME}-log-reader"
    (trust,) = _statements(role["assume_role_policy"])
    assert trust["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"} and trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    grants = tp.policy(res["aws_iam_role_policy.log_reader"])
    assert grants["ListTheLogs"]["Resource"] == BUCKET and grants["ListTheLogs"]["Action"] == "s3:ListBucket"
    assert grants["ReadTheLogs"]["Resource"] == f"{BUCKET}/*"
    assert set(tp.listed(grants["ReadTheLogs"]["Action"])) == {"s3:GetObject", "s3:GetObjectVersion"}
