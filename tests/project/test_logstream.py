"""The log handler (project/logstream.py): every line written once and in order, by one thread, in batches;
a stuck stdout never holds up the caller; a forked worker writes its own lines; lines queued at exit are kept."""

import io
import logging
import os
import subprocess
import sys
import threading
import time

import pytest

from project import logstream
from project.logstream import BackgroundStreamHandler


class CountingStream(io.StringIO):
    """A stream that counts its writes and can be held (a log driver that stopped reading)."""

    def __init__(self):
        super().__init__()
        self.writes = 0
        self.open = threading.Event()
        self.open.set()

    def write(self, text):
        self.open.wait()
        self.writes += 1
        return super().write(text)


def _logger(handler, name):
    logger = logging.getLogger(f"tests.logstream.{name}")
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    return logger


def test_lines_of_many_threads_are_written_once_in_order_and_in_fewer_writes():
    stream = CountingStream()
    handler = BackgroundStreamHandler(stream, background=True)
    logger = _logger(handler, "threads")

    def talk(thread):  # 8,000 lines in all, under MAX_QUEUED: none dropped
        for n in range(1000):
            logger.info("thread %d line %d", thread, n)

    threads = [threading.Thread(target=talk, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handler.flush()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 8_000 and len(set(lines)) == 8_000
    for thread in range(8):  # each thread's lines in the order it logged them
        own = [int(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(f"thread {thread} ")]
        assert own == list(range(1000))
    print(f"\n8,000 lines in {stream.writes} writes")
    assert stream.writes < 8_000 / 2


def test_a_stuck_stream_holds_nobody_up_and_the_lines_dropped_are_counted(monkeypatch):
    monkeypatch.setattr(logstream, "MAX_QUEUED", 100)
    monkeypatch.setattr(logstream, "FLUSH_SECONDS", 0.2)
    stream = CountingStream()
    handler = BackgroundStreamHandler(stream, background=True)
    logger = _logger(handler, "stuck")
    logger.info("first")
    handler.flush()
    stream.open.clear()  # stdout stops taking lines
    started = time.monotonic()
    for n in range(5000):
        logger.info("line %d", n)
    handler.flush()  # waits FLUSH_SECONDS at most
    took = time.monotonic() - started
    assert took < 2.0, f"logging 5,000 lines to a stuck stream took {took:.1f} s"
    stream.open.set()
    logger.info("after")
    deadline = time.monotonic() + 5
    while "after" not in stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    handler.flush()
    text = stream.getvalue()
    kept = sum(1 for line in text.splitlines() if line.startswith("line "))
    dropped = int(text.split("stdout was not taking lines: ")[1].split()[0])
    # the queue's bound, and what the writer held when the stream stuck; all the others counted
    assert 100 <= kept < 5000 and dropped > 0 and kept + dropped == 5000
    assert text.index("stdout was not taking lines") < text.index("after")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_writes_its_own_lines_and_not_its_parents(tmp_path):
    path = tmp_path / "log"
    with open(path, "a") as stream:
        handler = BackgroundStreamHandler(stream, background=True)
        logger = _logger(handler, "fork")
        logger.info("parent before")
        handler.flush()
        pid = os.fork()
        if pid == 0:  # the worker (gunicorn forks after loading the app)
            try:
                logger.info("child line")
                handler.flush()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        logger.info("parent after")
        handler.flush()
    assert path.read_text().splitlines() == ["parent before", "child line", "parent after"]


def _printed(background: bool, loop: str) -> list[str]:
    """What a new Python process prints whose root logger has our handler, after running `loop`."""
    code = (
        "import logging, sys; from project.logstream import BackgroundStreamHandler\n"
        f"handler = BackgroundStreamHandler(sys.stdout, background={background})\n"
        "logging.basicConfig(level=logging.INFO, handlers=[handler], format='%(message)s')\n"
        f"{loop}\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.splitlines()


def test_lines_queued_when_the_process_exits_are_written():
    printed = _printed(True, "for n in range(5000): logging.info('line %d', n)")
    assert printed == [f"line {n}" for n in range(5000)]


def test_outside_gunicorns_workers_a_line_is_written_at_once_among_what_a_command_prints():
    printed = _printed(None, "for n in range(3): logging.info('logged %d', n); print('printed', n, flush=True)")
    assert printed == [f"{what} {n}" for n in range(3) for what in ("logged", "printed")]
