# watcher: the worker as a container image (README.md, "Run in a container / on ECS").
#
#   docker build -t watcher:0.1.0 .
#   docker run --rm watcher:0.1.0 --version
#   docker run -d --init -p 9400:9400 -v "$PWD/config:/etc/watcher:ro" watcher:0.1.0
#
# Two stages: `build` makes a virtualenv in /opt/watcher with watcher and its dependencies (binary
# wheels: every dependency with C code has them for x86_64 and arm64, so no compiler is needed; the
# few source-only ones are pure Python); the final stage is the same base image plus that virtualenv,
# run as an unprivileged user. Works with BuildKit and with the classic builder.
#
# Build arguments:
#   BASE_IMAGE     the image both stages start from: Python 3.11 as `python3`, with its venv module.
#                  Default: the official python:3.11-slim. Both stages must use the same one (the
#                  virtualenv links to the base's interpreter).
#   PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_TRUSTED_HOST, PIP_FIND_LINKS, PIP_NO_INDEX
#                  pip's own settings, for the build stage only (a company mirror; or an offline
#                  build from a folder of wheels made with `pip wheel`, served over HTTP, see
#                  README.md). They do not reach the final image.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
ARG PIP_FIND_LINKS
ARG PIP_NO_INDEX
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/watcher
# The dependencies first, read from pyproject.toml alone: this layer is rebuilt only when they change,
# not at every change of the code.
COPY pyproject.toml /src/
RUN python3 -c 'import tomllib; print("\n".join(tomllib.load(open("/src/pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > /tmp/requirements.txt \
 && /opt/watcher/bin/pip install --prefer-binary --requirement /tmp/requirements.txt
COPY README.md /src/
COPY watcher /src/watcher
RUN /opt/watcher/bin/pip install --no-deps /src \
 && /opt/watcher/bin/watcher --version

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="watcher" \
      org.opencontainers.image.description="SQS-driven S3 file watcher: routes S3 event notifications to handlers" \
      org.opencontainers.image.licenses="Apache-2.0"
# A user of its own, with a fixed numeric id (Kubernetes' runAsNonRoot checks a number), and the
# folders it writes to: /var/lib/watcher (state, e.g. the idempotency database), its jobs/ folder
# (container jobs with runtime: process), /run/watcher (the ECS module writes the config there).
RUN useradd --no-log-init --uid 10001 --user-group --home-dir /var/lib/watcher --no-create-home \
        --shell /usr/sbin/nologin watcher \
 && install -d -o watcher -g watcher -m 0700 /var/lib/watcher /var/lib/watcher/jobs /run/watcher \
 && install -d -m 0755 /etc/watcher
# Writable with a read-only root file system: Docker (a fresh volume) and ECS on Fargate (a bind mount
# at a path named here) copy these folders' owner and mode from the image; without VOLUME, a Fargate
# bind mount is root's, mode 0755, and the worker could not write to it.
VOLUME ["/tmp", "/run/watcher", "/var/lib/watcher/jobs"]
COPY --from=build /opt/watcher /opt/watcher
ENV PATH=/opt/watcher/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    WATCHER_WORK_DIR=/var/lib/watcher/jobs
USER 10001:10001
WORKDIR /var/lib/watcher
# metrics.port: /metrics, /healthz, /readyz
EXPOSE 9400
# SIGTERM drains (worker.shutdown_grace_seconds), a second one exits at once: give `docker stop -t`
# or ECS's stopTimeout more than the grace period.
STOPSIGNAL SIGTERM
ENTRYPOINT ["watcher"]
CMD ["run", "-c", "/etc/watcher/watcher.yaml"]
