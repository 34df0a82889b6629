"""The EC2 web hosts' boot script (infra/terraform/user_data.sh.tftpl): rendered by Terraform with the values a
plan gives it (sample values where the plan knows them only after apply), shellcheck-clean, and run to the
end in a chroot of the app image, with stand-ins for what only an EC2 host has (dnf, systemctl, the AWS
CLI, Docker, curl) that record how they were called.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess

import pytest

from tests.deploy.containers import ROOT, Container
from tests.infra import tfplan as tp

pytestmark = pytest.mark.image

TEMPLATE = ROOT / "infra" / "terraform" / "user_data.sh.tftpl"
REGISTRY = "123456789012.dkr.ecr.ca-central-1.amazonaws.com"
STUBS = {
    "dnf": "",
    "systemctl": "",
    "curl": "",
    # `aws secretsmanager get-secret-value ... --secret-id ARN ...` prints "value-of-<the ARN's last part>"
    "aws": 'if [ "$1" = secretsmanager ]; then while [ "$1" != --secret-id ]; do shift; done; '
    'echo "value-of-${2##*:}"; else echo ecr-password; fi',
    "docker": '[ "$1" != login ] || cat >/dev/null',
}


def _sample_vars(planned: dict) -> dict:
    values = dict(planned["user_data_vars"])
    web = {k: "known-after-apply" if v is None else v for k, v in planned["task_environment"]["web"].items()}
    secrets = planned["task_secrets"]["web"]
    samples = {
        "env_file": "\n".join(f"{k}={web[k]}" for k in sorted(web)),
        "secrets": {k: f"arn:aws:secretsmanager:ca-central-1:123456789012:secret:{k.lower()}" for k in secrets},
        "registry": REGISTRY,
        "image": f"{REGISTRY}/tftest-prod:test",
    }
    unknown = [k for k, v in values.items() if v is None or (isinstance(v, dict) and None in v.values())]
    assert set(unknown) <= set(samples), f"no sample value for {set(unknown) - set(samples)}"
    return values | {k: samples[k] for k in unknown}


def _render(values: dict, workdir) -> str:
    shutil.copy(TEMPLATE, workdir / TEMPLATE.name)
    (workdir / "vars.json").write_text(json.dumps(values))
    expr = f'jsonencode(templatefile("{TEMPLATE.name}", jsondecode(file("vars.json"))))'
    env = {"CHECKPOINT_DISABLE": "1", "PATH": "/usr/local/bin:/usr/bin:/bin"}
    proc = subprocess.run(["terraform", "console"], input=expr, cwd=workdir, capture_output=True, text=True,
                          timeout=120, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(json.loads(proc.stdout))


@pytest.fixture(scope="module")
def boot(images, planned, tmp_path_factory):
    """Run the rendered script in a chroot of the app image; return what it did."""
    if shutil.which("shellcheck") is None:
        tp.unavailable("shellcheck is not installed (apt-get install shellcheck)")
    work = tmp_path_factory.mktemp("boot")
    values = _sample_vars(planned)
    script = _render(values, work)
    stubs = work / "stubs"
    (stubs / "bin").mkdir(parents=True)
    (stubs / "user_data.sh").write_text(script)
    for name, body in STUBS.items():
        path = stubs / "bin" / name
        path.write_text(f'#!/bin/bash\necho "{name} $*" >> /stubs/calls.log\n{body}\n')
        path.chmod(0o755)
    host = Container(images["app"], "signup-image-boot", work)
    try:
        env = {"PATH": "/stubs/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
        args = host.run_args(env, "--user=root", f"--volume={stubs}:/stubs:rw")
        ran = subprocess.run([*args, "bash", "/stubs/user_data.sh"], capture_output=True, text=True, timeout=120)
        read = host.exec(
            ["sh", "-c", "stat -c %a /run/signup/secrets.env; cat /run/signup/secrets.env"], {}, "--user=root"
        )
        files = {"app.env": host.exec(["cat", "/etc/signup/app.env"], {}, "--user=root").stdout, "secrets": read.stdout}
    finally:
        host.stop()
    log = stubs / "calls.log"
    calls = [shlex.split(line) for line in log.read_text().splitlines()] if log.exists() else []
    return {"script": script, "values": values, "ran": ran, "files": files, "calls": calls, "path": work}


def test_the_rendered_boot_script_is_shellcheck_clean(boot):
    path = boot["path"] / "rendered.sh"
    path.write_text(boot["script"])
    proc = subprocess.run(["shellcheck", "--shell=bash", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_the_boot_script_runs_to_the_end_and_writes_the_environment_and_the_secrets(boot, planned):
    assert boot["ran"].returncode == 0, boot["ran"].stdout + boot["ran"].stderr
    assert boot["files"]["app.env"].strip() == boot["values"]["env_file"]
    mode, *lines = boot["files"]["secrets"].split("\n")
    assert mode == "600"
    assert sorted(filter(None, lines)) == sorted(f"{k}=value-of-{k.lower()}" for k in planned["task_secrets"]["web"])


def test_the_boot_script_starts_the_web_task_s_containers_as_the_task_definition_does(boot, planned):
    runs = {call[call.index("--name") + 1]: call for call in boot["calls"] if call[:2] == ["docker", "run"]}
    assert list(runs) == ["app", "proxy"]  # gunicorn first; nginx once it answers
    image = boot["values"]["image"]
    assert (runs["app"][-1], runs["proxy"][-1]) == (image, f"{image}-proxy")
    containers = planned["containers"]
    for name, call in runs.items():
        tmpfs = [call[i + 1] for i, arg in enumerate(call) if arg == "--tmpfs"]
        assert tmpfs == [m["containerPath"] for m in containers[name]["mountPoints"]], name
        assert "--read-only" in call and call[call.index("--network") + 1] == "host"
        assert call[call.index("--stop-timeout") + 1] == str(containers[name]["stopTimeout"])
    # gunicorn: the web task's environment; its health URL is the task definition's health check's.
    assert "--env-file" in runs["app"] and "--env-file" not in runs["proxy"]
    health = next(call for call in boot["calls"] if call[0] == "curl")[-1]
    assert health in " ".join(containers["app"]["healthCheck"]["command"])
    assert f":{planned['task_environment']['web']['PORT']}/" in health
    assert containers["proxy"]["portMappings"][0]["containerPort"] == 8000  # the port deploy/nginx.conf listens on
