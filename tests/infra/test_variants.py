"""The deployment variants planned against moto: compute = "ec2" (Auto Scaling hosts) and private_ingress
(API Gateway -> VPC Link -> NLB -> internal ALB, VPC endpoints, no internet gateway or NAT), apart and
together. test_terraform.py covers the default (ECS, public ALB) shape, checkov and validate.

One plan per variant (each takes 20-40 s against moto), shared by its tests through a module fixture.
"""

from __future__ import annotations

import json

import pytest

from tests.infra import tfplan as tp
from tests.infra.test_terraform import EXPECTED_RULES, PRODUCTION
from tests.infra.tfplan import Terraform

# What the app calls through the endpoints with private_ingress (infra/terraform/endpoints.tf).
ENDPOINTS = {"ecr.api", "ecr.dkr", "logs", "secretsmanager", "monitoring", "email", "sns", "rds", "ecs",
             "elasticloadbalancing"}  # fmt: skip
SSM_ENDPOINTS = {"ssm", "ssmmessages", "ec2messages"}

# private_ingress: the ALB admits the NLB only; the app reaches AWS through the endpoints and S3's
# prefix list, never 0.0.0.0/0; nothing else changes.
PRIVATE_RULES = (EXPECTED_RULES - {
    ("alb", "ingress", 443, "0.0.0.0/0"),
    ("alb", "ingress", 80, "0.0.0.0/0"),
    ("app", "egress", 443, "0.0.0.0/0"),
}) | {
    ("alb", "ingress", 443, "sg:nlb"),
    ("nlb", "egress", 443, "sg:alb"),
    ("app", "egress", 443, "sg:endpoints"),
    ("app", "egress", 443, "pl:s3"),
    ("endpoints", "ingress", 443, "sg:app"),
}  # fmt: skip


@pytest.fixture(
    scope="module",
    params=[("ec2", False), ("ecs", True), ("ec2", True)],
    ids=lambda p: f"{p[0]}-{'private' if p[1] else 'public'}",
)
def variant(request, toolchain, moto_server, tmp_path_factory):
    compute, private = request.param
    tf = Terraform(tmp_path_factory.mktemp(f"{compute}-{private}"), toolchain)
    tf.init()
    plan = tp.plan(tf, {**tp.base_vars(moto_server.url), **PRODUCTION, "compute": compute, "private_ingress": private})
    return compute, private, plan, tp.resources(plan)


def _types(res: dict) -> set[str]:
    return {address.split(".")[0] for address in res}


def test_compute_decides_between_the_fargate_service_and_the_auto_scaling_group(variant):
    compute, _, plan, res = variant
    env = tp.output(plan, "app_environment")
    assert "aws_ecs_service.worker" in res  # the worker, purge and migration stay Fargate tasks
    if compute == "ecs":
        assert "aws_ecs_service.app[0]" in res and "aws_autoscaling_group" not in _types(res)
        assert (env["OPS_ASG"], env["OPS_ECS_SERVICE"]) == ("", "tftest-prod-app")
        return
    assert "aws_ecs_service.app[0]" not in res and "aws_appautoscaling_target" not in _types(res)
    assert (env["OPS_ASG"], env["OPS_ECS_SERVICE"]) == ("tftest-prod-web", "")
    assert plan["output_changes"]["OPS_ASG"]["after"] == "tftest-prod-web"  # the dashboard's OPS_ASG

    # The ASG: two AZs, ELB health checks, i.e. the target group's /health, and instance refresh.
    asg = res["aws_autoscaling_group.web[0]"]
    assert asg["health_check_type"] == "ELB" and asg["name"] == "tftest-prod-web"
    assert (asg["min_size"], asg["max_size"]) == (2, 6)
    config = tp.config(plan, "aws_autoscaling_group.web")["expressions"]
    assert tp.resource_ref(config["target_group_arns"]) == "aws_lb_target_group.app"
    assert "aws_subnet.app" in config["vpc_zone_identifier"]["references"]
    tg = res["aws_lb_target_group.app"]
    assert (tg["target_type"], tg["port"], tg["health_check"][0]["path"]) == ("instance", 8000, "/health")
    refresh = asg["instance_refresh"][0]
    assert refresh["strategy"] == "Rolling" and refresh["preferences"][0]["min_healthy_percentage"] == 100

    # The launch template: IMDSv2 only, an encrypted root volume, no SSH key, the app's security group.
    lt = res["aws_launch_template.web[0]"]
    assert lt["metadata_options"][0]["http_tokens"] == "required"
    assert lt["metadata_options"][0]["http_put_response_hop_limit"] == 1
    assert lt["block_device_mappings"][0]["ebs"][0]["encrypted"] == "true"
    assert not lt.get("key_name")
    assert tp.resource_ref(tp.config(plan, "aws_launch_template.web")["expressions"]["vpc_security_group_ids"]) == (
        "aws_security_group.app"
    )
    assert lt["image_id"].startswith("resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-")

    # Target tracking on CPU and on requests per host; SSM instead of SSH.
    metrics = {
        res[f"aws_autoscaling_policy.{name}[0]"]["target_tracking_configuration"][0]["predefined_metric_specification"][
            0
        ]["predefined_metric_type"]
        for name in ("cpu", "requests")
    }
    assert metrics == {"ASGAverageCPUUtilization", "ALBRequestCountPerTarget"}
    assert res["aws_iam_role_policy_attachment.web_host_ssm[0]"]["policy_arn"].endswith(
        ":policy/AmazonSSMManagedInstanceCore"
    )
    assert not [rule for rule in tp.security_rules(plan) if rule[2] == 22]
    # The host runs gunicorn with the web task's environment, sized for its vCPUs (t3.small: 2 -> 5).
    assert "ses:" not in json.dumps(res["aws_iam_role_policy.web_host[0]"].get("policy", ""))


def test_private_ingress_has_no_internet_gateway_or_nat_and_an_internal_alb(variant):
    _, private, plan, res = variant
    alb = res["aws_lb.main"]
    if not private:
        assert {"aws_internet_gateway", "aws_nat_gateway"} <= _types(res) and not alb["internal"]
        assert tp.security_rules(plan) == EXPECTED_RULES
        return
    assert not {"aws_internet_gateway", "aws_nat_gateway", "aws_eip", "aws_route"} & _types(res)
    assert not [a for a in res if a.startswith("aws_subnet.public")]
    assert alb["internal"] and alb["load_balancer_type"] == "application"
    assert "aws_subnet.app" in tp.config(plan, "aws_lb.main")["expressions"]["subnets"]["references"]
    assert tp.security_rules(plan) == PRIVATE_RULES


def test_private_ingress_reaches_the_alb_through_api_gateway_vpc_link_and_nlb(variant):
    _, private, plan, res = variant
    if not private:
        assert not {"aws_lb_target_group_attachment", "aws_api_gateway_rest_api", "aws_vpc_endpoint"} & _types(res)
        return
    nlb = res["aws_lb.nlb[0]"]
    assert (nlb["load_balancer_type"], nlb["internal"]) == ("network", True)
    to_alb = res["aws_lb_target_group.alb[0]"]
    assert (to_alb["target_type"], to_alb["protocol"], to_alb["port"]) == ("alb", "TCP", 443)
    attachment = tp.config(plan, "aws_lb_target_group_attachment.alb")["expressions"]
    assert tp.resource_ref(attachment["target_id"]) == "aws_lb.main"
    assert tp.resource_ref(tp.config(plan, "aws_api_gateway_vpc_link.main")["expressions"]["target_arns"]) == (
        "aws_lb.nlb"
    )

    for route in ("root", "proxy"):
        integration = res[f'aws_api_gateway_integration.alb["{route}"]']
        assert (integration["type"], integration["connection_type"]) == ("HTTP_PROXY", "VPC_LINK")
        assert integration["uri"].startswith("https://signup.example.test/")
        # The one client-IP header the app trusts on this path (CLIENT_IP_HEADER), from API Gateway itself.
        assert integration["request_parameters"]["integration.request.header.X-Client-IP"] == (
            "context.identity.sourceIp"
        )
    env = tp.output(plan, "app_environment")
    assert (env["CLIENT_IP_HEADER"], env["TRUSTED_PROXY_COUNT"]) == ("X-Client-IP", "1")

    # The public face: the custom domain with the certificate, logging without bodies, throttling, WAF.
    domain = res["aws_api_gateway_domain_name.main[0]"]
    assert domain["domain_name"] == "signup.example.test" and domain["regional_certificate_arn"].startswith("arn:")
    assert res["aws_api_gateway_rest_api.main[0]"]["disable_execute_api_endpoint"]
    stage = res["aws_api_gateway_stage.live[0]"]
    assert "sourceIp" not in stage["access_log_settings"][0]["format"]
    settings = res["aws_api_gateway_method_settings.all[0]"]["settings"][0]
    assert (settings["throttling_rate_limit"], settings["throttling_burst_limit"]) == (100, 200)
    assert settings["logging_level"] == "ERROR" and not settings["data_trace_enabled"]
    waf = tp.config(plan, "aws_wafv2_web_acl_association.api")["expressions"]
    assert tp.resource_ref(waf["resource_arn"]) == "aws_api_gateway_stage.live"


def test_private_ingress_has_the_vpc_endpoints_the_app_calls(variant):
    compute, private, plan, res = variant
    if not private:
        return
    interface = {a.split('"')[1] for a in res if a.startswith("aws_vpc_endpoint.interface[")}
    assert interface == ENDPOINTS | (SSM_ENDPOINTS if compute == "ec2" else set())
    for service in interface:
        endpoint = res[f'aws_vpc_endpoint.interface["{service}"]']
        assert endpoint["service_name"] == f"com.amazonaws.{tp.REGION}.{service}"
        assert endpoint["private_dns_enabled"] and endpoint["vpc_endpoint_type"] == "Interface"
    s3 = res["aws_vpc_endpoint.s3[0]"]
    assert (s3["service_name"], s3["vpc_endpoint_type"]) == (f"com.amazonaws.{tp.REGION}.s3", "Gateway")
    assert (
        "aws_route_table.app" in tp.config(plan, "aws_vpc_endpoint.s3")["expressions"]["route_table_ids"]["references"]
    )
    assert sorted(plan["output_changes"]["vpc_endpoints"]["after"]) == sorted(interface)
