# syntax=docker/dockerfile:1
# Build stage: compile wheels once, with the build toolchain that the runtime image does not carry.
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /build
COPY requirements.txt .
RUN python -m venv /venv && /venv/bin/pip install -r requirements.txt
# Compiled translation catalogues (.mo; only the .po files are in git), with GNU gettext's msgfmt.
RUN apt-get update && apt-get install -y --no-install-recommends gettext && rm -rf /var/lib/apt/lists/*
COPY locale ./locale
RUN for po in locale/*/LC_MESSAGES/django.po; do msgfmt --check -o "${po%.po}.mo" "$po"; done

# Runtime stage (the default target): the venv and the code, run as an unprivileged user.
# In the ECS task it sits behind the proxy below: PORT=8001 HOST=127.0.0.1 (the task definition sets them).
FROM python:3.11-slim-bookworm AS app
ENV PATH=/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PORT=8000
RUN groupadd --system app && useradd --system --gid app --home-dir /app --shell /usr/sbin/nologin app
COPY --from=build /venv /venv
WORKDIR /app
COPY --chown=app:app manage.py gunicorn.conf.py ./
COPY --chown=app:app project ./project
COPY --chown=app:app users ./users
COPY --chown=app:app ops ./ops
COPY --chown=app:app staff ./staff
COPY --chown=app:app templates ./templates
COPY --from=build --chown=app:app /build/locale ./locale
COPY --chown=app:app static ./static
# The RDS CA bundle for DATABASE_SSLMODE=verify-full (DATABASE_SSLROOTCERT's default path).
ADD --chmod=644 https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem /app/certs/rds-global-bundle.pem
# Static files are collected at build time with throwaway settings (no database is touched).
RUN DATABASE_URL=postgres://build@localhost/build SECRET_KEY=collectstatic-only-not-a-secret-0123456789abcdef \
    python manage.py collectstatic --noinput && chown -R app:app /app/staticfiles
USER app
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import os,urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/health', timeout=2)"
# Migrations run as a separate one-off task (`python manage.py migrate`) before a deploy, not on start.
CMD ["gunicorn", "-c", "gunicorn.conf.py", "project.wsgi"]

# Proxy stage: the buffering nginx sidecar (deploy/nginx.conf), `docker build --target proxy`, tagged
# <tag>-proxy. It listens on the container port 8000 and forwards whole requests to gunicorn on
# 127.0.0.1:8001 in the same task (awsvpc: the containers share the loopback).
FROM nginx:1.27-alpine AS proxy
COPY deploy/nginx.conf /etc/nginx/nginx.conf
# Non-root: the pid file and the temporary folders live in /tmp/nginx, owned by nginx's own user.
RUN install -d -o nginx -g nginx /tmp/nginx
USER nginx
RUN nginx -t
EXPOSE 8000
# The proxy's own liveness (not gunicorn's: the ALB checks /health through it).
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
  CMD wget -q -O /dev/null http://127.0.0.1:8000/proxy-health || exit 1
# SIGQUIT (the base image's STOPSIGNAL): nginx finishes the requests it holds before it exits.
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]

# `docker build` with no --target builds the app, as before.
FROM app
