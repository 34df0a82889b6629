"""The outbox: emails queued with the signup, sent by a real `manage.py worker` process through moto's SES.

SES down or the worker stopped never fails a signup; every email goes out once things are back, none twice;
a worker killed with SIGKILL mid-batch loses nothing.
"""

import signal
import subprocess
import sys
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
    first = start_worker(worker_env(ses.url), tmp_path / "first.log")
    try:
        wait_for(lambda: len(sent_mail(ses.url)) >= 10, 60, "the first emails", interval=0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        at_kill = len(sent_mail(ses.url))
        assert at_kill < 100, "the batch was finished before the kill: the test proved nothing"
    finally:
        if first.poll() is None:
            first.kill()
    second = start_worker(worker_env(ses.url), tmp_path / "second.log")
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
