# syntax=docker/dockerfile:1
# Built from what the repository holds: nothing is downloaded but packages (PyPI, Debian). `make image` builds
# both targets (app, proxy) with docker, podman or buildah (deploy/image.sh; docs/image.md).
# The bases are build arguments so that a machine that cannot reach the public registries can build on
# stand-ins made from Debian packages (deploy/standin/); production builds use these defaults.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG PROXY_IMAGE=nginx:1.27-bookworm

# Build stage: compile wheels once, with the build toolchain that the runtime image does not carry.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /build
COPY requirements.txt .
RUN python -m venv /venv && /venv/bin/pip install -r requirements.txt && /venv/bin/pip check
# Compiled translation catalogues (.mo; only the .po files are in git), with GNU gettext's msgfmt.
RUN apt-get update && apt-get install -y --no-install-recommends gettext && rm -rf /var/lib/apt/lists/*
COPY locale ./locale
RUN for po in locale/*/LC_MESSAGES/django.po; do msgfmt --check -o "${po%.po}.mo" "$po"; done

# Runtime stage (the default target): the venv and the code, run as an unprivileged user.
# In the ECS task it sits behind the proxy below: PORT=8001 HOST=127.0.0.1 (the task definition sets them).
FROM ${PYTHON_IMAGE} AS app
ENV PATH=/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PORT=8000
RUN groupadd --system app && useradd --system --gid app --home-dir /app --shell /usr/sbin/nologin app
COPY --from=build /venv /venv
WORKDIR /app
# The RDS CA bundle for DATABASE_SSLMODE=verify-full (DATABASE_SSLROOTCERT's default path), committed and
# pinned here; `make rds-ca` fetches AWS's current one and updates this line.
ARG RDS_CA_SHA256=fefac91d6800404461cece76724bc0a2383f4f556a1c9beb0813fac6f2e1e49f
COPY --chmod=644 deploy/rds-global-bundle.pem /app/certs/rds-global-bundle.pem
RUN echo "${RDS_CA_SHA256}  /app/certs/rds-global-bundle.pem" | sha256sum --check --strict
COPY --chown=app:app manage.py gunicorn.conf.py ./
COPY --chown=app:app project ./project
COPY --chown=app:app users ./users
COPY --chown=app:app ops ./ops
COPY --chown=app:app staff ./staff
COPY --chown=app:app api ./api
COPY --chown=app:app formdef ./formdef
COPY --chown=app:app templates ./templates
COPY --from=build --chown=app:app /build/locale ./locale
COPY --chown=app:app static ./static
# Static files are collected at build time with throwaway settings (no database is touched). The key only
# has to pass the production checks (50+ characters, 10+ distinct): it signs nothing and is not kept.
RUN DATABASE_URL=postgres://build@localhost/build \
    SECRET_KEY=collectstatic-only-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz \
    python manage.py collectstatic --noinput && chown -R app:app /app/staticfiles
USER app
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import os,urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/health', timeout=2)"
# Migrations run as a separate one-off task (`python manage.py migrate`) before a deploy, not on start.
CMD ["gunicorn", "-c", "gunicorn.conf.py", "project.wsgi"]

# Proxy stage: the buffering nginx sidecar (deploy/nginx.conf), `docker build --target proxy`, tagged
# <tag>-proxy. It listens on the container port 8000 and forwards whole requests to gunicorn on
# 127.0.0.1:8001 in the same task (awsvpc: the containers share the loopback). Debian-based, like the
# stand-in built from Debian's nginx where the registries are out of reach.
FROM ${PROXY_IMAGE} AS proxy
COPY deploy/nginx.conf /etc/nginx/nginx.conf
# Checked as root: under chroot isolation a non-root build step cannot open /dev/stdout (the access log).
RUN install -d /tmp/nginx && nginx -t && rm -rf /tmp/nginx
USER nginx
EXPOSE 8000
# The proxy's own liveness (not gunicorn's: the ALB checks /health through it), with bash alone: the base
# image carries neither curl nor wget.
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8000 && printf 'GET /proxy-health HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
# SIGQUIT: nginx finishes the requests it holds before it exits.
STOPSIGNAL SIGQUIT
# /tmp is an empty volume in the task (a tmpfs on the EC2 hosts): nginx's folder is made at start. No
# entrypoint script: the base image's would try to rewrite files on a read-only root.
ENTRYPOINT []
CMD ["sh", "-c", "install -d -m 700 /tmp/nginx && exec nginx -g 'daemon off;'"]

# `docker build` with no --target builds the app, as before.
FROM app
