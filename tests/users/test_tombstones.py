"""The erasure ledger (users/tombstones.py) and `manage.py reapply_erasures`.

Every erasure leaves an entry outside the database, written by the real worker through the outbox: no
address in clear; written while S3 (moto) is unreachable, it lands once S3 is back, locked. After a restore
(simulated here by putting the rows back as a backup would have them; drills/restore.py does a real
point-in-time restore) the worker holds email until reapply_erasures has erased those people again; a
person who signed up again after their erasure stays; a second run changes nothing.
"""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from pathlib import Path

import boto3
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from devenv.servers import MotoServer, free_port
from tests.users.mail import start_worker, stop, wait_for, worker_env
from users import tombstones
from users.erasure import erase_signup
from users.management.commands.worker import QueueWorker
from users.models import Erasure, Signup, Tombstone
from users.tasks import email_tasks, enqueue_email, write_tombstone

pytestmark = pytest.mark.usefixtures("live_db")


def _signup(email: str, **fields) -> Signup:
    return Signup.objects.create(full_name="Ada Example", email=email, consent=True, **fields)


def _run_queue() -> dict:
    worker = QueueWorker(interval=0.1, batch=True, worker_id="test")
    worker.run()
    return worker.counts


def _ledger_files() -> list[Path]:
    return sorted((Path(settings.ERASURE_LEDGER_DIR) / tombstones.PREFIX).glob("*.json"))


def test_erasure_writes_a_ledger_entry_through_the_outbox_with_no_address_in_clear():
    signup = _signup("Ada.Lovelace@Example.com", phone="+442079460958")
    erase_signup(signup.pk)
    assert not _ledger_files()  # nothing written in the erasure's transaction: the worker writes it
    name = Tombstone.objects.get(signup_id=signup.pk).name
    assert _run_queue()["done"] == 1
    files = _ledger_files()
    assert [tombstones.PREFIX + f.name for f in files] == [name]
    raw = files[0].read_bytes()
    for secret in (b"ada.lovelace", b"lovelace", b"example.com", b"Ada", b"442079460958"):
        assert secret.lower() not in raw.lower()
    entry = json.loads(raw)
    assert entry["address"] == tombstones.address_hmac(" ada.lovelace@example.COM ")  # normalised, keyed
    assert entry["signup_id"] == signup.pk and entry["reason"] == "erased"
    assert tombstones.restore_pending() is False


def test_a_ledger_entry_written_while_s3_is_down_is_delivered_when_it_returns(tmp_path):
    port = free_port()  # nothing listens yet: S3 is unreachable
    bucket = "erasure-ledger-test"
    env = worker_env(f"http://127.0.0.1:{port}", ERASURE_LEDGER_BUCKET=bucket)
    worker = start_worker(env, tmp_path / "worker.log")
    moto = MotoServer(port=port)
    try:
        signup = _signup("grace@example.org")
        erase_signup(signup.pk)
        tasks = email_tasks().model.objects.filter(task_path=write_tombstone.module_path)
        wait_for(lambda: tasks.exclude(traceback="").exists(), 60, "a failed ledger write")
        assert tasks.get().status == "READY"  # to be retried, not failed
        moto.start()
        s3 = boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")  # fmt: skip
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
        wait_for(lambda: tasks.filter(status="SUCCESSFUL").exists(), 120, "the entry delivered", interval=0.5)
        objects = s3.list_objects_v2(Bucket=bucket)["Contents"]
        assert [o["Key"] for o in objects] == [Tombstone.objects.get().name]
        head = s3.head_object(Bucket=bucket, Key=objects[0]["Key"])
        body = s3.get_object(Bucket=bucket, Key=objects[0]["Key"])["Body"].read()
    finally:
        stop(worker)
        moto.stop()
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] > timezone.now() + timedelta(days=settings.ERASURE_LEDGER_RETAIN_DAYS - 1)
    assert b"grace" not in body and json.loads(body)["signup_id"] == signup.pk
    log = (tmp_path / "worker.log").read_text()
    assert "retry in" in log and "grace" not in log


def _restore(signup: Signup) -> None:
    """Put the row back as a backup taken before its erasure holds it, and forget the erasure (as a restore does)."""
    cols = ["full_name", "email", "phone", "consent", "created_at"]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE users_signup SET {', '.join(c + ' = %s' for c in cols)}, withdrawn_at = NULL WHERE id = %s",
            [getattr(signup, c) for c in cols] + [signup.pk],
        )
    _forget_erasure(signup)


def _forget_erasure(signup: Signup) -> None:
    Tombstone.objects.filter(signup_id=signup.pk).delete()
    Erasure.objects.filter(signup_id=signup.pk).delete()


def test_after_a_restore_email_is_held_until_reapply_erases_again_and_re_signups_stay():
    gone = _signup("gone@example.org")  # the backup has the very row: matched by id and created_at
    moved = _signup("moved@example.org", created_at=timezone.now() - timedelta(days=3))
    again = _signup("again@example.org")  # signed up after the backup, erased, then again after the restore
    stays = _signup("stays@example.org")
    for person in (gone, moved, again):
        erase_signup(person.pk)
    assert _run_queue()["done"] == 3  # the three ledger entries written
    _restore(gone)
    # A reload with new ids (a logical dump): the same person under another id, matched by address.
    Signup.objects.filter(pk=moved.pk).delete()
    moved_copy = _signup("Moved@Example.org", created_at=moved.created_at)
    _forget_erasure(moved)
    Signup.objects.filter(pk=again.pk).delete()
    _forget_erasure(again)
    again_new = _signup("again@example.org")  # after their erasure: new consent, kept
    tombstones.restore_check.reset()
    assert tombstones.restore_pending() is True

    enqueue_email(stays.pk, "confirm")  # someone never erased: their email waits, then goes
    _run_queue()
    assert email_tasks(stays.pk).get().status == "READY"  # held: the database was restored

    out = StringIO()
    call_command("reapply_erasures", stdout=out, stderr=StringIO())
    assert "3 ledger entries unknown" in out.getvalue()
    assert "2 rows erased again (1 by signup id, 1 by address)" in out.getvalue()
    assert "1 kept" in out.getvalue()
    for text in ("gone@", "moved@", "again@", "example.org"):
        assert text not in out.getvalue().lower()
    assert Signup.objects.get(pk=gone.pk).is_erased
    assert Signup.objects.get(pk=moved_copy.pk).is_erased
    assert not Signup.objects.get(pk=again_new.pk).is_erased
    assert not Signup.objects.get(pk=stays.pk).is_erased
    assert tombstones.restore_pending() is False
    assert Tombstone.objects.filter(reapplied_at__isnull=False).count() == 3

    before = list(Signup.objects.order_by("pk").values_list("pk", "email"))
    out = StringIO()
    call_command("reapply_erasures", stdout=out, stderr=StringIO())
    assert "0 ledger entries unknown" in out.getvalue() and "0 rows erased again" in out.getvalue()
    assert list(Signup.objects.order_by("pk").values_list("pk", "email")) == before
    assert len(_ledger_files()) == 3  # reapplying writes no new entry

    with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
        _run_queue()
    assert email_tasks(stays.pk).get().status == "SUCCESSFUL"
