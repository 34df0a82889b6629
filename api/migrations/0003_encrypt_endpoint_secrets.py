"""Endpoint secrets encrypted at rest (api/crypto.py): the columns become text, and every stored secret is
encrypted under the first of WEBHOOK_SECRET_KEYS. Reversible: going back decrypts them again."""

from django.db import migrations

import api.models


def _rewrite(apps, schema_editor, change) -> None:
    # Raw SQL: the historical model's field would already encrypt and decrypt what it reads and writes.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT id, secret, previous_secret FROM api_endpoint ORDER BY id FOR UPDATE")
        for pk, secret, previous in cursor.fetchall():
            cursor.execute("UPDATE api_endpoint SET secret = %s, previous_secret = %s WHERE id = %s",
                           [change(secret), change(previous), pk])  # fmt: skip


def encrypt(apps, schema_editor) -> None:
    from api import crypto

    _rewrite(apps, schema_editor, lambda v: v if not v or v.startswith(crypto.PREFIX) else crypto.encrypt(v))


def decrypt(apps, schema_editor) -> None:
    from api import crypto

    def plain(value: str) -> str:
        if not value or not value.startswith(crypto.PREFIX):
            return value
        opened = crypto.decrypt(value)
        if isinstance(opened, crypto.Undecryptable):
            raise RuntimeError("an endpoint secret cannot be decrypted with WEBHOOK_SECRET_KEYS; not reverting")
        return opened

    _rewrite(apps, schema_editor, plain)


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0002_keys_audit"),
    ]

    operations = [
        migrations.AlterField(
            model_name="endpoint",
            name="secret",
            field=api.models.EncryptedSecretField(default=api.models.new_secret),
        ),
        migrations.AlterField(
            model_name="endpoint",
            name="previous_secret",
            field=api.models.EncryptedSecretField(blank=True, default=""),
        ),
        migrations.RunPython(encrypt, decrypt),
    ]
