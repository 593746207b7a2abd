# NextNum's web app on CPU (docs/docker.md: building it online, offline, and without a Docker daemon).
#   docker build -t nextnum .                                 # reads with onnxruntime, no PyTorch
#   docker build --build-arg TRAINING=1 -t nextnum-train .   # adds PyTorch: the Train tab works
#   docker run --rm -p 7860:7860 nextnum                      # then open http://localhost:7860
#   docker run --rm -p 7860:7860 -v /path/to/data:/data -e NEXTNUM_DATA=/data nextnum   # Train tab on MNIST
# BASE names the Python 3.11 image both stages start from; an offline build passes a locally made one.
ARG BASE=python:3.11-slim

# ---- deps: every Python package, installed into a virtual environment that the app stage copies whole,
# so the wheels the install reads from never become a layer of the final image.
FROM ${BASE} AS deps
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# TRAINING=0 (the default) installs requirements-serve.txt: the app reads, draws every view and saves
# corrections with onnxruntime, from the graph the checkpoint carries, and has no PyTorch (its Train tab
# says how to add it). TRAINING=1 installs requirements.txt, PyTorch included, for the Train tab.
ARG TRAINING=0
# The requirements files always match, so this COPY works with or without a wheelhouse/ folder in the
# context. When there is one, COPY puts its contents (the wheels) beside them.
COPY requirements.txt requirements-serve.txt wheelhouse* /tmp/deps/
# Anything besides the requirements files means a wheelhouse came along: install from it alone (no index at
# all), for machines that can't reach one. Otherwise, with TRAINING=1, CPU builds of torch/torchvision first,
# at requirements.txt's pins (PyPI's Linux wheels are CUDA builds of several GB), then the rest.
RUN python -m venv /opt/venv \
 && if [ "$TRAINING" = 1 ]; then req=/tmp/deps/requirements.txt; else req=/tmp/deps/requirements-serve.txt; fi \
 && if ls /tmp/deps | grep -qvxE 'requirements(-serve)?[.]txt'; then \
        echo "installing from the wheelhouse only"; \
        /opt/venv/bin/pip install --no-index --find-links /tmp/deps -r "$req"; \
    else \
        if [ "$TRAINING" = 1 ]; then \
            /opt/venv/bin/pip install --index-url "$TORCH_INDEX" $(grep -E '^torch(vision)?==' "$req"); \
        fi \
     && /opt/venv/bin/pip install -r "$req"; \
    fi

# ---- the app
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    GRADIO_ANALYTICS_ENABLED=False \
    NEXTNUM_THREADS=1

# Printed-digit fonts for the Train tab's fonts/polish configs (configs/fonts.json lists them); reading needs none.
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-dejavu-core fonts-liberation \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*

# Runs as an unprivileged user (uid 1000, as on Hugging Face Spaces), who owns the app folder so that the
# Train tab can write checkpoints there.
RUN useradd --create-home --uid 1000 app \
 && mkdir -p /home/app/nextnum \
 && chown app:app /home/app/nextnum
WORKDIR /home/app/nextnum

COPY --from=deps /opt/venv /opt/venv

# What the app reads at run time, named one by one: a whole-context COPY would also carry a wheelhouse/
# of several GB into the image. tests/fixtures holds the Train tab's built-in MNIST sample.
COPY --chown=app:app app.py requirements.txt requirements-serve.txt ./
COPY --chown=app:app nextnum/ nextnum/
COPY --chown=app:app checkpoints/ checkpoints/
COPY --chown=app:app configs/ configs/
COPY --chown=app:app examples/ examples/
COPY --chown=app:app tests/fixtures/ tests/fixtures/
USER app

EXPOSE 7860
# Asks the port the app was told to use, so that `-e GRADIO_SERVER_PORT=...` keeps the check right.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/gradio_api/info' % os.environ.get('GRADIO_SERVER_PORT', '7860'), timeout=4)" || exit 1

CMD ["python", "app.py"]
