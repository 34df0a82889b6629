"""The log handler of every process: in gunicorn's workers, lines are formatted by the caller and written by a
thread of their own.

gunicorn.conf.py turns the thread on in each worker (`BackgroundStreamHandler.background = True`); elsewhere
(manage.py commands, the tests) a line is written at once, as logging.StreamHandler does, so it stays in its
place among what the command prints. In a worker, a request thread formats its line and puts it on a queue,
nothing more: it never waits for stdout (a log driver that stalls stalls only the writer) and takes no lock
shared with the other threads. The writer takes everything queued and writes it in one call, then lets lines
gather for BATCH_SECONDS, so under load many lines cost one write instead of one each (make bench measures the
request log's share: bench/signup.py); a line that comes to an idle writer is written at once.

- At most MAX_QUEUED lines wait; beyond that new lines are dropped and counted, and the writer says how many
  in a WARNING line once it can write again: memory stays bounded while stdout is stuck.
- Queued lines are written before the process exits (logging.shutdown calls `flush`, waiting FLUSH_SECONDS
  at most) and by `flush` whenever something wants them on stdout now.
- gunicorn forks its workers after loading the app (preload_app): each process starts its own writer and
  queue at its first line, so a worker never inherits the parent's.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time

MAX_QUEUED = 10_000  # lines; ~5 MB at most
FLUSH_SECONDS = 2.0  # how long `flush` (and the exit) waits for the writer
BATCH_SECONDS = 0.1  # after each write the writer lets lines gather this long (a line waits this long at most)


class BackgroundStreamHandler(logging.Handler):
    background = False  # True: queue lines for the writer thread; set in gunicorn's workers (gunicorn.conf.py)

    def __init__(self, stream=None, background: bool | None = None) -> None:
        super().__init__()
        if background is not None:
            self.background = background
        self.stream = stream if stream is not None else sys.stderr
        self._pid = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._dropped = 0
        self._start_lock = threading.Lock()

    def handle(self, record: logging.LogRecord) -> bool:
        """Filter and emit without the handler's lock: formatting is per record, the queue is thread-safe."""
        rv = self.filter(record)
        if isinstance(rv, logging.LogRecord):  # a filter may return a replacement record (Python 3.12+)
            record = rv
        if rv:
            self.emit(record)
        return bool(rv)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
        except Exception:  # as logging.StreamHandler: report, never raise into the caller
            self.handleError(record)
            return
        if not self.background:
            with self.lock:  # at once, as logging.StreamHandler
                self._write_now([line])
            return
        if self._pid != os.getpid():
            self._start()
        if self._queue.qsize() >= MAX_QUEUED:
            self._dropped += 1  # approximate under threads; said by the writer once it writes again
            return
        self._queue.put(line)

    def flush(self) -> None:
        """Wait (FLUSH_SECONDS at most) until every line queued so far is written."""
        if self._pid != os.getpid():  # no writer in this process: nothing queued
            with self.lock:
                self._write_now([])
            return
        done = threading.Event()
        self._queue.put(done)
        done.wait(FLUSH_SECONDS)

    def close(self) -> None:
        self.flush()
        super().close()

    def _start(self) -> None:
        with self._start_lock:
            if self._pid == os.getpid():
                return
            self._queue, self._dropped = queue.SimpleQueue(), 0  # the parent's, if forked: not ours to write
            threading.Thread(target=self._write, args=(self._queue,), name="log-writer", daemon=True).start()
            self._pid = os.getpid()

    def _write(self, lines: queue.SimpleQueue) -> None:
        while True:
            batch, waiting = [lines.get()], []
            while True:
                try:
                    batch.append(lines.get_nowait())
                except queue.Empty:
                    break
            text = []
            for item in batch:
                (waiting if isinstance(item, threading.Event) else text).append(item)
            if self._dropped:  # said where the gap is: before the lines queued since
                dropped, self._dropped = self._dropped, 0
                text.insert(0, self._dropped_line(dropped))
            self._write_now(text)
            for event in waiting:
                event.set()
            time.sleep(BATCH_SECONDS)  # nobody is woken per line meanwhile: they only queue it

    def _write_now(self, text: list[str]) -> None:
        try:
            if text:
                self.stream.write("".join(text))
            self.stream.flush()
        except Exception:  # noqa: S110 - a closed or broken stdout: nothing left to tell it to
            pass

    def _dropped_line(self, dropped: int) -> str:
        record = logging.LogRecord("project.logstream", logging.WARNING, __file__, 0,
                                   "stdout was not taking lines: %d log lines dropped", (dropped,), None)  # fmt: skip
        record.request_id = "-"
        try:
            return self.format(record) + "\n"
        except Exception:  # a formatter that fails on this record too
            return f"stdout was not taking lines: {dropped} log lines dropped\n"
