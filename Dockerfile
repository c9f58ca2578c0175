# XianKe 鲜课 — one image for every service (bot, scheduler, ingest endpoint); compose.yaml picks the command.
#
#   docker build -t xianke .
#   docker run --env-file .env -v xianke-data:/data -p 127.0.0.1:8080:8080 xianke serve --webhook
#   (the image's default command: the bot with its scheduler in one process; compose splits them)
#
# torch is installed first and pinned: 2.13.0 from the PyTorch CPU index is a CPU-only build (a looser pin
# or PyPI's default wheel pulls several GB of CUDA libraries this project never uses). Set
# --build-arg TORCH_INDEX_URL=https://pypi.org/simple on platforms whose PyPI wheel is already CPU-only.

FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# Optional extras: redis for XIANKE_FSM_REDIS_URL (several webhook workers). Set to "" to leave it out.
ARG EXTRA_PACKAGES="redis>=5"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    XIANKE_DATA_DIR=/data \
    XIANKE_WEBHOOK_HOST=0.0.0.0 \
    XIANKE_WEBHOOK_PORT=8080 \
    XIANKE_HEALTHCHECK_URL=http://127.0.0.1:8080/healthz

# libgomp: OpenMP runtime for torch / faiss on slim images.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

# 1. torch==2.13.0 (CPU) first, in its own layer: it changes least and is the largest.
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"

# 2. the project (dependencies resolve against the torch already installed).
WORKDIR /opt/xianke/src
COPY pyproject.toml README.md ./
COPY core ./core
COPY nlp ./nlp
COPY recsys ./recsys
COPY bot ./bot
COPY jobs ./jobs
COPY xianke ./xianke
COPY tests/__init__.py ./tests/__init__.py
COPY tests/fakebot ./tests/fakebot
RUN pip install . ${EXTRA_PACKAGES} && python -c "import torch; assert torch.__version__.startswith('${TORCH_VERSION}')"

# 3. the embedded encoder, built once into the image (checksummed; `xianke models verify` checks it).
RUN XIANKE_DATA_DIR=/opt/xianke xianke models build && xianke --help > /dev/null

# 4. a non-root user owns the data volume.
COPY docker/entrypoint.sh /usr/local/bin/xianke-entrypoint
RUN useradd --system --uid 10001 --create-home --home-dir /home/xianke xianke \
    && mkdir -p /data \
    && chown -R xianke:xianke /data \
    && chmod -R a+rX /opt/xianke
USER xianke
WORKDIR /home/xianke
VOLUME ["/data"]
EXPOSE 8080 8090

# /healthz of the webhook app (8080) or the ingest endpoint (8090): compose sets XIANKE_HEALTHCHECK_URL
# per service; the scheduler has no HTTP port and disables the check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(os.environ['XIANKE_HEALTHCHECK_URL'], timeout=4)"

ENTRYPOINT ["xianke-entrypoint"]
CMD ["serve", "--webhook"]
