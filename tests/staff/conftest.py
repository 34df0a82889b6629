"""Staff fixtures: the second factor switched on (the local tools' default is off), users, TOTP codes."""

from __future__ import annotations

import pytest

PASSWORD = "a-long-test-password"


@pytest.fixture
def otp_on(settings):
    settings.STAFF_OTP_REQUIRED = True
    return settings


@pytest.fixture
def csrf_client():
    from django.test import Client

    return Client(enforce_csrf_checks=True)


def make_staff(username: str = "staff", **extra):
    from django.contrib.auth.models import User

    return User.objects.create_user(username, password=PASSWORD, is_staff=True, is_superuser=True, **extra)


def invite_path(user) -> str:
    """A fresh enrolment link's path for `user`, as `manage.py invite_staff` makes it."""
    from staff import enrolment

    return enrolment.invite(user, "manage.py").path()


def totp_code(key_hex: str, drift: int = 0) -> str:
    """The code an authenticator app shows for this key now (drift=1: the next 30-second step)."""
    from binascii import unhexlify

    from django_otp.oath import totp

    return f"{totp(unhexlify(key_hex), drift=drift):06d}"


def code_for_secret(secret: str, drift: int = 0) -> str:
    """The same from the base32 key the setup page shows (spaces allowed)."""
    from base64 import b32decode

    return totp_code(b32decode(secret.replace(" ", "")).hex(), drift)


def axe_violations(page) -> list[str]:
    """Run axe-core (the copy axe-playwright-python ships) on the page; one line per rule it finds broken."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes, e.g. {v['nodes'][0]['html'][:120]})"
            for v in results.response["violations"]]  # fmt: skip
