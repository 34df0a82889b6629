"""Helpers for the person's-data tests: sign up, run the queue, find links in the emails sent."""

from __future__ import annotations

import re

from django.core import mail

VALID = {"full_name": "Ada Lovelace", "email": "ada@example.com", "phone": "", "country": "GB", "consent": "on"}
LINK = re.compile(r"https?://[^\s\"'<>]+")


def sign_up(client, ip: str = "198.51.100.23", **changes):
    data = {k: v for k, v in {**VALID, **changes}.items() if v is not None}
    return client.post("/signup/", data, REMOTE_ADDR=ip)


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
