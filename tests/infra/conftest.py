"""Fixtures shared by the Terraform tests (how Terraform runs: tfplan.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.infra import tfplan as tp


@pytest.fixture(scope="session")
def toolchain() -> Path:
    """The provider mirror; terraform must be on PATH (skipped without, failed under CI)."""
    if shutil.which("terraform") is None:
        tp.unavailable("terraform is not on PATH")
    plugin_dir = tp.plugin_dir()
    if plugin_dir is None:
        tp.unavailable(f"no AWS provider mirror (set TF_PLUGIN_DIR or install one under {', '.join(tp.PLUGIN_DIRS)})")
    return plugin_dir
