# NextNum's web app on CPU.
#   docker build -t nextnum .
#   docker run --rm -p 7860:7860 nextnum                      # then open http://localhost:7860
#   docker run --rm -p 7860:7860 -v /path/to/data:/data -e NEXTNUM_DATA=/data nextnum   # Train tab on MNIST
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    GRADIO_ANALYTICS_ENABLED=False \
    NEXTNUM_THREADS=1

# Printed-digit fonts for the Train tab's fonts/polish configs (configs/fonts.json lists them); reading needs none.
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-dejavu-core fonts-liberation \
 && rm -rf /var/lib/apt/lists/*

# Runs as an unprivileged user (uid 1000, as on Hugging Face Spaces).
RUN useradd --create-home --uid 1000 app
WORKDIR /home/app/nextnum

# Dependencies first, so code changes don't reinstall them. CPU builds of torch/torchvision first
# (PyPI's Linux wheels are CUDA builds of several GB); requirements.txt's pins then match them.
# opencv-python-headless needs no libGL.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
COPY requirements.txt .
RUN pip install --index-url "$TORCH_INDEX" torch==2.14.1 torchvision==0.29.1 \
 && pip install -r requirements.txt

COPY --chown=app:app . .
USER app

EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/gradio_api/info', timeout=4)" || exit 1

CMD ["python", "app.py"]
