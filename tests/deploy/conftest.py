"""The built images and Terraform's view of how they run, once per session (tests/deploy/containers.py)."""

from __future__ import annotations

import shutil

import pytest

from tests.deploy import containers as ct
from tests.deploy import tasks
from tests.infra import tfplan as tp


@pytest.fixture(scope="session")
def images() -> dict[str, ct.Image]:
    """Build both targets with deploy/image.sh (skipped without buildah, failed under CI)."""
    if not ct.have_buildah():
        tp.unavailable("buildah is not installed (apt-get install buildah debootstrap podman)")
    print(ct.build_images())
    return {"app": ct.Image(ct.TAG), "proxy": ct.Image(f"{ct.TAG}-proxy")}


@pytest.fixture(scope="session")
def planned(moto_server, tmp_path_factory) -> dict:
    """The outputs of `terraform plan` against moto: containers, task_environment, task_secrets, user_data_vars."""
    if shutil.which("terraform") is None:
        tp.unavailable("terraform is not on PATH")
    plugin_dir = tp.plugin_dir()
    if plugin_dir is None:
        tp.unavailable("no AWS provider mirror (set TF_PLUGIN_DIR)")
    return tasks.plan_outputs(plugin_dir, tmp_path_factory.mktemp("tf-image"), moto_server.url)
