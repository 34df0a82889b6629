"""The outbox: emails queued with the signup, sent by a real `manage.py worker` process through moto's SES.

SES down or the worker stopped never fails a signup; every email goes out once things are back, none twice;
a worker killed with SIGKILL mid-batch loses nothing. The worker holds no lock and no transaction while SES
answers: a person's erasure goes through while it hangs; a message that kills the worker every time ends
failed after EMAIL_MAX_ATTEMPTS.
"""

import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from django.test import Client

from devenv.servers import MotoServer, free_port
from tests.conftest import OUTPUT
from tests.users.mail import (
    BASE,
    recipients,
    sent_mail,
    sign_up,
    start_worker,
    stop,
    text_of,
    verify_sender,
    wait_for,
    worker_env,
)
from users.erasure import erase_signup
from users.models import Signup
from users.tasks import email_tasks

pytestmark = [pytest.mark.usefixtures("live_db"), pytest.mark.slow]


@pytest.fixture
def ses(moto_server):
    moto_server.reset()
    verify_sender(moto_server.url)
    return moto_server


def _sign_up_many(count: int) -> list[str]:
    addresses = [f"person{i:03d}@example.com" for i in range(count)]
    statuses = [
        sign_up(
            Client(), ip=f"198.51.{100 + i // 200}.{i % 200 + 1}", email=address, full_name=f"Person {i}"
        ).status_code
        for i, address in enumerate(addresses)
    ]
    assert statuses == [302] * count
    return sorted(addresses)


def test_the_worker_process_sends_each_email_once_through_ses_with_its_headers(ses, tmp_path):
    addresses = _sign_up_many(3)
    worker = start_worker(worker_env(ses.url), tmp_path / "worker.log")
    try:
        wait_for(lambda: len(sent_mail(ses.url)) >= 3, 60, "3 emails")
        time.sleep(1)  # anything sent twice would show by now
    finally:
        assert stop(worker) == 0  # SIGTERM: a clean stop
    messages = sent_mail(ses.url)
    assert recipients(messages) == addresses
    message = messages[0]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Unsubscribe"].strip().startswith("<http://testserver/my-data/unsubscribe/")
    assert "http://testserver/signup/confirm/" in text_of(message)
    assert message.get_body(preferencelist=("html",)) is not None
    assert set(email_tasks().values_list("status", flat=True)) == {"SUCCESSFUL"}
    assert "stopped: 3 done" in (tmp_path / "worker.log").read_text()


def test_ses_unreachable_signups_still_succeed_and_every_email_goes_once_when_it_returns(tmp_path):
    port = free_port()  # nothing listens here yet: SES is "down"
    worker = start_worker(worker_env(f"http://127.0.0.1:{port}"), tmp_path / "worker.log")
    moto = MotoServer(port=port)
    try:
        addresses = _sign_up_many(100)  # 100 x 302, asserted inside
        wait_for(lambda: email_tasks().exclude(traceback="").count() >= 3, 60, "failed attempts")
        assert not email_tasks().filter(status="SUCCESSFUL").exists()
        moto.start()
        verify_sender(moto.url)
        wait_for(lambda: len(sent_mail(moto.url)) >= 100, 180, "100 emails after SES came back", interval=0.5)
        time.sleep(2)
        sent = recipients(sent_mail(moto.url))
    finally:
        stop(worker)
        moto.stop()
    assert sent == addresses  # every one, none twice
    log = (tmp_path / "worker.log").read_text()
    assert "retry in" in log
    assert "person0" not in log  # the log names signups by id, never by address
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "outbox-ses-down.log").write_text(log[-20000:])


def test_a_worker_killed_mid_batch_loses_no_email(ses, tmp_path):
    addresses = _sign_up_many(100)
    # The row in flight at the kill is retried once its lease runs out (EMAIL_LEASE_SECONDS).
    first = start_worker(worker_env(ses.url, EMAIL_LEASE_SECONDS="3"), tmp_path / "first.log")
    try:
        wait_for(lambda: len(sent_mail(ses.url)) >= 10, 60, "the first emails", interval=0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        at_kill = len(sent_mail(ses.url))
        assert at_kill < 100, "the batch was finished before the kill: the test proved nothing"
    finally:
        if first.poll() is None:
            first.kill()
    second = start_worker(worker_env(ses.url, EMAIL_LEASE_SECONDS="3"), tmp_path / "second.log")
    try:
        wait_for(lambda: len(set(recipients(sent_mail(ses.url)))) >= 100, 120, "every email after the restart")
        time.sleep(1)
    finally:
        stop(second)
    sent = recipients(sent_mail(ses.url))
    assert sorted(set(sent)) == addresses
    assert len(sent) - len(set(sent)) <= 1  # at most the one in flight at the kill went twice
    assert set(email_tasks().values_list("status", flat=True)) == {"SUCCESSFUL"}


ATTEMPTS = int(__import__("os").environ.get("SIGTERM_ATTEMPTS", "8"))


def test_sigterm_at_any_moment_of_an_idle_worker_stops_it_cleanly(tmp_path):
    # --interval 0: the worker polls without pause, so most signals land inside a claim's query or transaction.
    env = worker_env("http://127.0.0.1:9")  # no mail to send: SES is never called
    for attempt in range(ATTEMPTS):
        log = tmp_path / f"w{attempt}.log"
        proc = subprocess.Popen([sys.executable, "manage.py", "worker", "--interval", "0"], cwd=BASE, env=env,
                                stdout=log.open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
        wait_for(lambda log=log: "started" in log.read_text(), 30, "the worker to start")
        time.sleep(0.013 * attempt)
        started = time.monotonic()
        assert stop(proc) == 0, log.read_text()[-2000:]
        assert time.monotonic() - started < 5


class HangingSes:
    """A TCP endpoint standing in for SES that accepts every connection and never answers; counts them."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def hanging_ses():
    server = HangingSes()
    yield server
    server.close()


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def test_an_erasure_goes_through_while_the_worker_hangs_on_ses_and_after_it_is_killed(hanging_ses, tmp_path):
    sign_up(Client(), email="ada@example.com")
    sign_up(Client(), email="grace@example.com", ip="198.51.100.24")
    ada, grace = Signup.objects.get(email="ada@example.com"), Signup.objects.get(email="grace@example.com")
    worker = start_worker(worker_env(hanging_ses.url, EMAIL_LEASE_SECONDS="60"), tmp_path / "worker.log")
    try:
        wait_for(lambda: hanging_ses.connections, 60, "the worker to reach SES")
        held = email_tasks().get(status="RUNNING")  # claimed and committed: the worker waits on SES
        person = ada if held.args_kwargs["kwargs"]["signup_id"] == ada.pk else grace
        started = time.monotonic()
        erase_signup(person.pk, None)  # the app role's lock_timeout would fail it, were the row locked
        while_stuck = time.monotonic() - started
        assert worker.poll() is None, "the worker was not stuck in SES any more: the test proved nothing"
        assert not email_tasks(person.pk).exists() and Signup.objects.get(pk=person.pk).is_erased
        _kill(worker)
        other = grace if person is ada else ada
        started = time.monotonic()
        erase_signup(other.pk, None)
        after_kill = time.monotonic() - started
    finally:
        if worker.poll() is None:
            _kill(worker)
    assert not email_tasks(other.pk).exists()
    assert while_stuck < 1.0 and after_kill < 1.0, (while_stuck, after_kill)
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "outbox-erasure-while-ses-hangs.txt").write_text(
        f"erasure while the worker hangs on SES: {while_stuck * 1000:.1f} ms;"
        f" after SIGKILL: {after_kill * 1000:.1f} ms\n"
    )


def test_a_message_that_kills_the_worker_every_time_ends_failed_after_max_attempts(hanging_ses, tmp_path):
    sign_up(Client(), email="ada@example.com")
    env = worker_env(hanging_ses.url, EMAIL_LEASE_SECONDS="1", EMAIL_MAX_ATTEMPTS="3")
    for attempt in range(1, 4):  # each worker takes the message to SES and dies there
        proc = start_worker(env, tmp_path / f"w{attempt}.log")
        try:
            wait_for(lambda attempt=attempt: len(hanging_ses.connections) >= attempt, 60, f"attempt {attempt}")
        finally:
            _kill(proc)
        row = email_tasks().get()
        assert (row.status, len(row.worker_ids)) == ("RUNNING", attempt)  # counted before the send, kept
    reached = len(hanging_ses.connections)
    last = start_worker(env, tmp_path / "last.log")
    try:
        wait_for(lambda: email_tasks().filter(status="FAILED").exists(), 60, "the message to be failed")
    finally:
        stop(last)
    row = email_tasks().get()
    assert (row.status, len(row.worker_ids), row.exception_class_path) == ("FAILED", 3, "users.worker.LeaseExpired")
    assert len(hanging_ses.connections) == reached  # the fourth worker did not send it again
    assert "failed for good: its worker died 3 times" in (tmp_path / "last.log").read_text()
