"""gunicorn settings, sized for a 2-vCPU task and the database connections each process keeps.

Each worker thread keeps one persistent connection per database alias (CONN_MAX_AGE), so connections
per alias = WEB_CONCURRENCY x GUNICORN_THREADS per task: 3 x 4 = 12 by default, well under RDS limits.
"""

import multiprocessing
import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104 - in a container
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count() + 1)
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
worker_class = "gthread"
preload_app = True  # a configuration error stops the master at once instead of crash-looping workers
timeout = 30
graceful_timeout = 25  # shorter than the ALB target group's 30 s deregistration delay
keepalive = 75  # longer than the ALB's 60 s idle timeout, so the ALB closes idle connections first
max_requests = 5000
max_requests_jitter = 500
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
