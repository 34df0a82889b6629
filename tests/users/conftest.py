"""Fixtures shared by the users tests."""

import pytest


@pytest.fixture
def staff_client(client):
    """Django's test client logged in as a superuser on the staff site."""
    from django.contrib.auth.models import User  # after the root conftest has configured Django

    user = User.objects.create_user("staff", password="a-long-test-password", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client
