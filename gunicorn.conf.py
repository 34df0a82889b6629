"""gunicorn settings, sized from the CPUs this container may use and the database connections it keeps.

Behind the nginx sidecar (deploy/nginx.conf) gunicorn listens on 127.0.0.1:8001 (PORT, HOST); nginx buffers
slow clients so a thread is only ever busy with a whole request.

Workers: WEB_CONCURRENCY, else max(2, ceil(CPUs) + 1) where CPUs is what the container may use: the cgroup
CPU quota (cgroup v2 cpu.max, or v1 cfs_quota_us / cfs_period_us) capped by os.sched_getaffinity.
os.cpu_count() reports the host: 2 on a 0.5-vCPU Fargate task, whose quota is 0.5.
Each worker thread keeps one persistent connection per database alias (CONN_MAX_AGE), so connections per
alias = workers x GUNICORN_THREADS per task: 2 x 4 = 8 on a 0.5 or 1 vCPU task.
"""

import math
import os
import signal
import threading
from pathlib import Path


def available_cpus(cgroup: str = "/sys/fs/cgroup") -> float:
    """Return how many CPUs this process may use: the cgroup quota, at most the CPUs it may run on."""
    cpus = float(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    root = Path(cgroup)
    try:
        if (root / "cpu.max").exists():  # cgroup v2: "max 100000" or "50000 100000"
            quota, period = [*(root / "cpu.max").read_text().split(), "100000"][:2]
        else:  # cgroup v1
            quota = (root / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (root / "cpu" / "cpu.cfs_period_us").read_text().strip()
        if quota not in {"max", "-1"} and int(period) > 0:
            cpus = min(cpus, int(quota) / int(period))
    except (OSError, ValueError):
        pass  # no cgroup limit readable: the affinity is the limit
    return cpus


def default_workers(cpus: float) -> int:
    return max(2, math.ceil(cpus) + 1)


bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104 - in a container
workers = int(os.environ.get("WEB_CONCURRENCY") or default_workers(available_cpus()))
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
# Seconds a worker keeps serving after SIGTERM, /health answering 503 ("draining"), before it stops accepting.
drain_seconds = float(os.environ.get("DRAIN_SECONDS") or 0)
worker_class = "gthread"
preload_app = True  # a configuration error stops the master at once instead of crash-looping workers
timeout = 30
graceful_timeout = 25  # shorter than the ALB target group's 30 s deregistration delay
keepalive = 75  # longer than the ALB's 60 s idle timeout, so the ALB closes idle connections first
# Workers are not recycled (max_requests 0): make soak shows a worker's RSS flat at ~90 MB over 80,000+
# requests, and every recycle leaves the task a worker short for ~2 s (it drains first) and the new worker
# idle while kept-alive connections stay with the old one. If a leak appears, recycle with jitter
# (GUNICORN_CMD_ARGS="--max-requests 50000 --max-requests-jitter 5000": minutes per worker at peak).
max_requests = 0
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
accesslog = None  # the app logs each request itself
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
if os.environ.get("LOG_FORMAT", "json") == "json":  # gunicorn's own lines as JSON too, like the app's
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request": {"()": "project.requestlog.RequestContextFilter"}},
        "formatters": {"json": {"()": "project.requestlog.JsonFormatter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout",
                                 "formatter": "json", "filters": ["request"]}},
        "loggers": {"gunicorn.error": {"handlers": ["console"], "level": loglevel.upper(), "propagate": False}},
    }  # fmt: skip
control_socket_disable = True  # unused, and two instances on one host would fight over its path


def post_worker_init(worker):
    """Log lines go to a writer thread (project/logstream.py); on SIGTERM say "draining" at once (/health: 503),
    then stop as gunicorn does, after drain_seconds."""
    from ops.health import start_draining
    from project.logstream import BackgroundStreamHandler

    BackgroundStreamHandler.background = True

    stop = worker.handle_exit

    def handle_term(sig, frame):
        start_draining()
        if drain_seconds > 0:
            threading.Timer(drain_seconds, stop, (sig, frame)).start()
        else:
            stop(sig, frame)

    signal.signal(signal.SIGTERM, handle_term)
    signal.siginterrupt(signal.SIGTERM, False)  # as gunicorn's own handler: do not interrupt active requests
