"""Fixtures shared by the users tests."""

import pytest


@pytest.fixture
def staff_client(client):
    """Django's test client logged in as a superuser on the staff site."""
    from django.contrib.auth.models import User  # after the root conftest has configured Django

    user = User.objects.create_user("staff", password="a-long-test-password", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


@pytest.fixture
def ses(moto_server):
    """moto's SES, emptied, with our sender verified."""
    from tests.users.mail import verify_sender

    moto_server.reset()
    verify_sender(moto_server.url)
    return moto_server


@pytest.fixture
def worker(ses, app_server, tmp_path):
    """A real `manage.py worker` process sending through moto's SES, its links pointing at the app server."""
    from tests.users.mail import start_worker, stop, worker_env

    proc = start_worker(worker_env(ses.url, PUBLIC_BASE_URL=app_server.url), tmp_path / "worker.log")
    yield proc
    stop(proc)
