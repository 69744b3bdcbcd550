# thaiplate serving image: TorchServe 0.12.0 + ONNX Runtime, no torch, non-root, honours $PORT.
# Build:  docker build -t thaiplate .      Run:  docker run -p 8080:8080 thaiplate
# Expected size: ~600 MB (python:3.11-slim 125 MB + JRE 17 headless ~220 MB + onnxruntime/opencv/numpy
# ~200 MB + TorchServe ~10 MB + models ~30 MB: the served INT8 ONNX and their fp32 references); no torch (~800 MB CPU / 5 GB CUDA) anywhere.

# ---- stage 1: install the serving venv and build the model archives --------------------------------
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN python -m venv /app/.venv-serve
COPY pyproject.toml README.md ./
COPY thaiplate ./thaiplate
# Editable install at /app in both stages: thaiplate.serving.server finds config.prod.properties and
# log4j2.xml next to the package (ROOT = /app), exactly as on a dev checkout.
RUN /app/.venv-serve/bin/pip install -e ".[serve]" \
 && ! /app/.venv-serve/bin/python -c "import torch" 2>/dev/null
COPY scripts ./scripts
# The pinned TorchServe 0.12.0 worker imports torch at module level; make it lazy (checksum-guarded).
RUN PYTHON=/app/.venv-serve/bin/python scripts/patch-torchserve
COPY models ./models
COPY handlers ./handlers
COPY archive ./archive
RUN PYTHON=/app/.venv-serve/bin/python scripts/build-archives --out /app/model_store

# ---- stage 2: runtime ------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/* /usr/share/doc /usr/share/man
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin thaiplate
WORKDIR /app
COPY --from=build /app/.venv-serve /app/.venv-serve
COPY --from=build /app/model_store /app/model_store
COPY pyproject.toml config.prod.properties log4j2.xml ./
COPY thaiplate ./thaiplate
COPY scripts/serve ./scripts/serve
# Cloud Run sets $PORT; 8080 is the default. Logs go to stdout/stderr only (Cloud Run collects them);
# one intra-op thread per ONNX session; glibc arenas capped so worker RSS stays flat under load.
ENV PORT=8080 \
    THAIPLATE_ENV=prod \
    THAIPLATE_MODE=dag \
    MODEL_STORE=/app/model_store \
    PATH=/app/.venv-serve/bin:$PATH \
    OMP_NUM_THREADS=1 \
    MALLOC_ARENA_MAX=2 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER thaiplate
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ping' % os.environ.get('PORT','8080'), timeout=2)" || exit 1
# The same entrypoint the tests run directly (no Docker engine on the dev machines).
ENTRYPOINT ["scripts/serve"]
