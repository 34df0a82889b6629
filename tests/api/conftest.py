"""Fixtures the API's tests share."""

import pytest


@pytest.fixture
def receiver(settings):
    """A local webhook receiver the delivery may reach (allowed host, no back-off, a 2 s timeout)."""
    from api.models import new_secret  # after django.setup() (tests/conftest.py), not at collection
    from tests.api.receiver import Receiver

    settings.WEBHOOK_ALLOWED_HOSTS = ["localhost"]
    settings.WEBHOOK_RETRY_SCALE = 0.0
    settings.WEBHOOK_TIMEOUT_SECONDS = 2.0
    r = Receiver(new_secret())  # a test that makes its endpoint through the API sets the secret it is given
    yield r
    r.close()
