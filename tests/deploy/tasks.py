"""How each container runs, read from Terraform: the image test runs what the task definitions say.

`terraform plan` against moto (tests/infra/tfplan.py) gives the outputs `containers` (command, mounts,
ports, health check of each container: ecs.tf local.containers, which the task definitions are made of),
`task_environment` and `task_secrets`. The environment is passed through as planned, except what must
differ on this machine, listed in LOCAL_DIFFERENCES with the reason.
"""

from __future__ import annotations

from pathlib import Path

from tests.infra import tfplan as tp

# The compute = "ec2" shape: its plan holds the web hosts' boot-script variables too; the task definitions
# and their containers are the same in both shapes.
PLAN_VARS = {"compute": "ec2"}
OUTPUTS = ("containers", "task_environment", "task_secrets", "user_data_vars")

# Variable -> why it differs here. Their values come from the session's services (local_environment).
LOCAL_DIFFERENCES = {
    "DATABASE_URL": "the session's PostgreSQL primary instead of RDS (the owner's role for migrate)",
    "DATABASE_REPLICA_URLS": "the session's streaming replica instead of the RDS read replicas",
    "DATABASE_IAM_AUTH": "0: IAM tokens need RDS; the local servers take the roles' passwords",
    "DATABASE_SECRET_ARN": "empty: the password is in the URL instead of Secrets Manager",
    "DATABASE_SSLMODE": "disable: the loopback servers have no TLS (the CA bundle path is checked apart)",
    "AWS_ENDPOINT_URL": "moto instead of AWS",
    "AWS_ACCESS_KEY_ID": "moto's; on AWS the task role's credentials come from ECS",
    "AWS_SECRET_ACCESS_KEY": "moto's",
    "DATABASE_APP_PASSWORD": "migrate only: the app role's password (on AWS without RDS Proxy: IAM tokens)",
}


def _known(after, unknown):
    """A planned value with what is only known after apply as None, at any depth."""
    if isinstance(unknown, dict):
        keys = set(unknown) | set(after or {})
        return {k: _known((after or {}).get(k), unknown.get(k)) for k in keys}
    if unknown is True:
        return None
    return after


def plan_outputs(toolchain: Path, workdir: Path, moto_url: str) -> dict:
    tf = tp.Terraform(workdir, toolchain)
    tf.init()
    plan = tp.plan(tf, {**tp.base_vars(moto_url), **PLAN_VARS})
    changes = plan["output_changes"]
    return {name: _known(changes[name].get("after"), changes[name].get("after_unknown")) for name in OUTPUTS}


def local_environment(planned: dict, role: str, services: dict) -> dict[str, str]:
    """The environment of `role` (web, worker, purge, migrate): planned values, then the local differences.

    `services` maps every LOCAL_DIFFERENCES name and every secret name to its value on this machine.
    """
    env = {k: "" if v is None else v for k, v in planned["task_environment"][role].items()}  # ARNs: after apply
    secrets = planned["task_secrets"][role]
    missing = set(secrets) - set(services)
    assert not missing, f"no local value for the secrets {missing} of {role}"
    return env | {k: services[k] for k in secrets} | {k: services[k] for k in LOCAL_DIFFERENCES if k in services}
