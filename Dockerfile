# syntax=docker/dockerfile:1
# genhub: one image for `serve`, `worker`, `scheduler` and `migrate`
# (docker/entrypoint.sh dispatches on the command; see docs/deploy.md).
#
#   docker build -t genhub:local .
#   docker run --rm -p 8000:8000 -e ENVIRONMENT=development genhub:local
#
# Stage 1 builds a virtualenv with the runtime dependencies and the project
# (no dev extras, no compilers: every dependency ships a manylinux wheel);
# stage 2 copies only that virtualenv onto a clean slim base and runs it as an
# unprivileged user.

# The Python that CI tests with (pyproject: requires-python >= 3.11).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /src

# Runtime dependencies first, read from pyproject.toml at the versions pinned in
# requirements.lock (what CI tested), so this layer is rebuilt only when the
# dependencies change, not on every source edit.
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('/tmp/requirements.txt', 'w').write('\n'.join(deps) + '\n')" \
    && pip install --no-cache-dir -c requirements.lock -r /tmp/requirements.txt

# Then the project itself: a regular (non-editable) install of the wheel built
# from the source, without the [dev] extra.
COPY . .
RUN pip install --no-cache-dir --no-deps . \
    && pip check

# The media workshop runs the ffmpeg binary that the imageio-ffmpeg wheel ships (a static
# build: the slim base needs no system ffmpeg). Fail the build if it is missing or does not
# run here, or lacks the encoders the simulated provider and thumbnails use.
RUN python -c "import imageio_ffmpeg, subprocess; exe = imageio_ffmpeg.get_ffmpeg_exe(); subprocess.run([exe, '-hide_banner', '-version'], check=True, capture_output=True); out = subprocess.run([exe, '-hide_banner', '-encoders'], check=True, capture_output=True, text=True).stdout; missing = [e for e in ('libx264', 'png') if e not in out]; assert not missing, missing"


FROM ${PYTHON_IMAGE} AS runtime

ARG GENHUB_UID=10001
ARG GENHUB_GID=10001

# ENVIRONMENT=production: the server refuses to start without DATABASE_URL,
# REDIS_URL, a strong JWT_SECRET and S3 (or an explicit LOCAL_STORAGE_PATH),
# naming what is missing. Pass -e ENVIRONMENT=development for a throwaway run.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONFAULTHANDLER=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    ENVIRONMENT=production \
    DATA_DIR=/app/data \
    HOST=0.0.0.0 \
    PORT=8000

COPY docker/entrypoint.sh /app/docker/entrypoint.sh
# Sample catalogues (docs/deploy.md, "Models and presets"): read-only data for `genhub catalogue apply`.
COPY deploy/catalogue /app/deploy/catalogue

# /app/data belongs to the app user, so a named volume mounted there (compose)
# starts out writable by it.
RUN groupadd --system --gid "${GENHUB_GID}" genhub \
    && useradd --system --uid "${GENHUB_UID}" --gid genhub --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin genhub \
    && mkdir -p /app/data \
    && chown genhub:genhub /app/data \
    && chmod 0755 /app/docker/entrypoint.sh

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
USER ${GENHUB_UID}:${GENHUB_GID}

EXPOSE 8000

# Liveness of the HTTP server on $PORT. The slim image has no curl: use Python.
# (Worker and scheduler containers have no HTTP port: docker-compose.yml gives
# them their own check.)
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=4)"]

# Exec form on purpose: the entrypoint reads $PORT at run time and execs
# `genhub serve --port "$PORT"`; an exec-form CMD would never expand "$PORT".
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["serve"]
