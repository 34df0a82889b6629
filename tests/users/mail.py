"""Helpers for the person's-data tests: sign up, run the queue, find links in the emails sent."""

from __future__ import annotations

import email
import email.message
import email.policy
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.core import mail

BASE = Path(__file__).resolve().parents[2]

VALID = {"full_name": "Ada Lovelace", "email": "ada@example.com", "phone": "", "country": "GB", "consent": "on"}
LINK = re.compile(r"https?://[^\s\"'<>]+")


def sign_up(client, ip: str = "198.51.100.23", language: str = "en", **changes):
    """Post the signup form as a browser would: with the version of the form it was shown (the current one)."""
    from formdef import published

    data = {"form_version": published.current().id, **VALID, **changes}
    data = {k: v for k, v in data.items() if v is not None}
    return client.post("/signup/", data, REMOTE_ADDR=ip, HTTP_ACCEPT_LANGUAGE=language)


def run_queue() -> dict:
    """Run every ready task with the real worker loop, in this process (mail goes to django.core.mail.outbox)."""
    from users.management.commands.worker import QueueWorker

    worker = QueueWorker(interval=0, batch=True, worker_id="test")
    worker.run()
    return worker.counts


def link(message, path_prefix: str) -> str:
    """Return the path of the first link in `message` (text part) whose path starts with `path_prefix`."""
    for url in LINK.findall(message.body):
        path = "/" + url.split("/", 3)[3]
        if path.startswith(path_prefix):
            return path
    raise AssertionError(f"no {path_prefix} link in: {message.body}")


def outbox_to(address: str) -> list:
    return [m for m in mail.outbox if address in m.to]


# --- a real worker process against moto's SES -------------------------------------------------------------
SENDER = "no-reply@example.org"


def worker_env(endpoint: str, **extra: str) -> dict:
    """The environment of a `manage.py worker` process on the test session's services, sending through SES."""
    from tests.conftest import SERVICES

    return {**os.environ, **SERVICES.environ(), "EMAIL_PROVIDER": "ses", "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
            "EMAIL_FROM": f"Signups <{SENDER}>", "EMAIL_RETRY_SECONDS": "0.2", "LOG_FORMAT": "text",
            "PUBLIC_BASE_URL": "http://testserver", **extra}  # fmt: skip


def start_worker(env: dict, log: Path) -> subprocess.Popen:
    out = log.open("ab")
    return subprocess.Popen([sys.executable, "manage.py", "worker", "--interval", "0.1"], cwd=BASE, env=env,
                            stdout=out, stderr=subprocess.STDOUT)  # fmt: skip


def stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def verify_sender(moto_url: str) -> None:
    import boto3

    client = boto3.client("sesv2", endpoint_url=moto_url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    client.create_email_identity(EmailIdentity=SENDER)


def sent_mail(moto_url: str) -> list[email.message.Message]:
    """Return every message moto's SES accepted, parsed (raw ones: anymail sends raw MIME for custom headers)."""
    data = json.load(urllib.request.urlopen(f"{moto_url}/moto-api/data.json", timeout=10))["ses"]
    raw = [email.message_from_string(m["raw_data"], policy=email.policy.default) for m in data.get("RawMessage", [])]
    return raw + [_simple(m) for m in data.get("Message", [])]


def _simple(item: dict) -> email.message.Message:
    message = email.message.EmailMessage()
    message["To"] = ", ".join(item.get("destinations", {}).get("ToAddresses", []))
    message["Subject"] = item.get("subject", "")
    message.set_content(item.get("body", ""))
    return message


def recipients(messages: list) -> list[str]:
    return sorted(str(m["To"]) for m in messages)


def text_of(message) -> str:
    part = message.get_body(preferencelist=("plain",)) if message.is_multipart() else message
    return part.get_content()


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def mail_to(ses, address: str, subject_part: str):
    """Wait for the newest email SES accepted for `address` whose subject holds `subject_part`."""

    def find():
        return [m for m in sent_mail(ses.url) if address in str(m["To"]) and subject_part in str(m["Subject"])]

    return wait_for(find, 60, f"an email '{subject_part}'")[-1]


def link_in(message, marker: str) -> str:
    """Return the first URL in the email's text part holding `marker` (not the unsubscribe link)."""
    return next(word for word in text_of(message).split() if marker in word and "/unsubscribe/" not in word)
