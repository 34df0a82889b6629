"""Endpoint secrets encrypted at rest (api/crypto.py): Fernet under WEBHOOK_SECRET_KEYS, rotatable keys, the
migration that encrypted the rows already there, a secret no key opens, and pages that show a secret once."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from api import checks, crypto, delivery
from api.models import Attempt, Delivery, Endpoint, Event, new_secret
from api.runner import run_until_idle
from tests.api.receiver import Receiver

pytestmark = pytest.mark.usefixtures("live_db")
BASE = Path(__file__).resolve().parents[2]
OLD, NEW = "old-key-" + "o" * 40, "new-key-" + "n" * 40


def _stored(pk: int) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret, previous_secret FROM api_endpoint WHERE id = %s", [pk])
        return cursor.fetchone()


def test_the_secret_is_a_fernet_token_in_the_table_and_plain_in_python(settings):
    settings.WEBHOOK_SECRET_KEYS = [OLD]
    secret = new_secret()
    endpoint = Endpoint.objects.create(url="https://example.com/hook", secret=secret)
    stored, previous = _stored(endpoint.pk)
    assert stored.startswith("fernet:gAAAAA") and secret not in stored and secret[6:] not in stored
    assert previous == ""  # no previous secret: nothing to encrypt
    assert Endpoint.objects.get().secret == secret
    endpoint.rotate_secret()
    assert _stored(endpoint.pk)[1].startswith("fernet:") and Endpoint.objects.get().previous_secret == secret


def test_keys_rotate_without_losing_a_secret_and_an_unknown_key_signs_nothing(settings, tmp_path):
    settings.WEBHOOK_SECRET_KEYS = [OLD]
    settings.WEBHOOK_ALLOWED_HOSTS, settings.WEBHOOK_RETRY_SCALE = ["localhost"], 0.0
    receiver = Receiver(new_secret())
    endpoint = Endpoint.objects.create(url=receiver.url(), secret=receiver.secret)
    settings.WEBHOOK_SECRET_KEYS = [NEW, OLD]  # the new key first: it encrypts, both decrypt
    assert Endpoint.objects.get().secret == receiver.secret
    before = _stored(endpoint.pk)[0]
    call_command("rotate_webhook_keys", stdout=open(tmp_path / "out", "w"))  # noqa: SIM115
    assert _stored(endpoint.pk)[0] != before
    settings.WEBHOOK_SECRET_KEYS = [NEW]  # the old key dropped: every secret is readable still
    assert Endpoint.objects.get().secret == receiver.secret

    settings.WEBHOOK_SECRET_KEYS = [OLD]  # a key dropped too soon (or the wrong one deployed)
    unreadable = Endpoint.objects.get()
    assert unreadable.secret == "" and isinstance(unreadable.secret, crypto.Undecryptable)
    unreadable.description = "edited meanwhile"
    unreadable.save()  # the token is written back unchanged, not replaced by an empty or new secret
    Event.objects.create(type=Event.CREATED, signup_id=1)
    delivery.run_one()
    assert receiver.received == [] and receiver.rejected == 0  # nothing was sent, signed or not
    assert Attempt.objects.get().error == "secret cannot be decrypted (WEBHOOK_SECRET_KEYS)"
    settings.WEBHOOK_SECRET_KEYS = [NEW]
    assert Endpoint.objects.get().secret == receiver.secret
    run_until_idle()
    assert len(receiver.received) == 1 and Delivery.objects.get().status == "succeeded"
    receiver.close()


def test_the_migration_encrypts_the_rows_already_there_and_reverting_decrypts_them():
    executor = MigrationExecutor(connection)
    executor.migrate([("api", "0002_keys_audit")])
    try:
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO api_endpoint (url, description, secret, previous_secret, event_types, "
                           "full_payload, enabled, disabled_reason, created_at) VALUES ('https://example.com/h', '', "
                           "'whsec_plain', 'whsec_before', '[]', false, true, '', now()) RETURNING id")  # fmt: skip
            pk = cursor.fetchone()[0]
        executor = MigrationExecutor(connection)
        executor.migrate([("api", "0003_encrypt_endpoint_secrets")])
        stored = _stored(pk)
        assert all(v.startswith("fernet:") for v in stored) and "plain" not in "".join(stored)
        row = Endpoint.objects.get(pk=pk)
        assert (row.secret, row.previous_secret) == ("whsec_plain", "whsec_before")
        MigrationExecutor(connection).migrate([("api", "0002_keys_audit")])
        assert _stored(pk) == ("whsec_plain", "whsec_before")
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_the_admin_shows_a_secret_once_after_adding_and_after_rotating(client, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["localhost"]
    client.force_login(User.objects.create_user("root", password="x-long-password", is_staff=True, is_superuser=True))
    added = client.post("/admin/api/endpoint/add/", {"url": "http://localhost:9/hook", "event_types": "[]",
                                                     "enabled": "on"})  # fmt: skip
    endpoint = Endpoint.objects.get()
    assert endpoint.secret in added.content.decode() and "no-store" in added["Cache-Control"]
    change = client.get(f"/admin/api/endpoint/{endpoint.pk}/change/").content.decode()
    listing = client.get("/admin/api/endpoint/").content.decode()
    assert endpoint.secret not in change + listing and "whsec_" not in change + listing
    rotated = client.post("/admin/api/endpoint/", {"action": "rotate_secret", "_selected_action": [endpoint.pk]})
    fresh = Endpoint.objects.get()
    assert fresh.secret != endpoint.secret and fresh.previous_secret == endpoint.secret
    assert fresh.secret in rotated.content.decode() and endpoint.secret not in rotated.content.decode()
    assert "whsec_" not in client.get(f"/admin/api/endpoint/{endpoint.pk}/change/").content.decode()


def test_production_must_set_its_own_keys_and_short_keys_are_refused(settings):
    settings.LOCAL_MODE, settings.WEBHOOK_SECRET_KEYS = False, []
    assert [w.id for w in checks.check_webhook_secret_keys(None)] == ["api.W001"]
    settings.WEBHOOK_SECRET_KEYS = [NEW]
    assert checks.check_webhook_secret_keys(None) == []
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=BASE, capture_output=True, text=True,
                            timeout=120, env={"PATH": "/usr/bin:/bin", "WEBHOOK_SECRET_KEYS": "short"})  # fmt: skip
    assert result.returncode != 0 and "WEBHOOK_SECRET_KEYS: each key must be at least 32 characters" in result.stderr
