# insurance-charges for Elastic Beanstalk's "Docker running on 64bit Amazon Linux 2023":
# EB builds this on each instance and runs it behind nginx (see docs/deploy/elastic-beanstalk.md).
# The same image is a SageMaker inference container: `docker run IMAGE serve`
# (docs/deploy/sagemaker.md), and a SageMaker training container: `docker run IMAGE train`
# (docs/deploy/sagemaker-training.md). Works on the official python:3.11-slim (/usr/local/bin/python3) and on any
# Debian base with python3 and python3-venv (/usr/bin/python3): only the venv's python runs.
ARG BASE_IMAGE=python:3.11-slim

# ---- build: the pinned environment, trimmed to what serving needs ----------------------
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
# binutils (strip) is a build tool: it stays in this stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends binutils \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
# Requirements before app code: this slow layer is rebuilt only when the lock changes.
COPY requirements.txt docker/unused-at-serving.txt /tmp/build/
# The lock is installed whole with --no-deps and checked, exactly as `make` does; then the
# packages neither serving nor training imports (time series, notebooks) are removed, with test
# suites and debug symbols, and pip itself. The runtime stage proves the model still loads.
RUN /opt/venv/bin/pip install --no-deps -r /tmp/build/requirements.txt \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/pip uninstall -y -r /tmp/build/unused-at-serving.txt \
 && /opt/venv/bin/pip uninstall -y pip \
 && find /opt/venv/lib -type d -name tests -prune -exec rm -rf {} + \
 && find /opt/venv/lib -type f -name '*.so*' -exec sh -c \
      'for f; do readelf -S "$f" 2>/dev/null | grep -q debug_info && strip --strip-debug "$f"; done; true' sh {} +

# ---- runtime: the venv, the app and the committed model; no compilers, no pip ----------
FROM ${BASE_IMAGE} AS runtime
# libgomp1: LightGBM's OpenMP runtime; PyCaret imports LightGBM while unpickling the model.
# nginx (Debian's): in front of gunicorn, it holds slow and idle clients
# (docs/reliability.md#slow-and-hostile-clients).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 nginx \
 && rm -rf /etc/nginx/sites-enabled /var/log/nginx/* \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 app \
 && useradd --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin --no-log-init app \
 && install -d -o app -g app /var/log/insurance-charges \
 && install -d -o app -g app /opt/ml/model /opt/ml/output
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY model/ model/
COPY application.py gunicorn.conf.py ./
COPY insurance_charges/ insurance_charges/
# Compile now: the app user cannot write __pycache__ at run time (nor anything but /tmp).
RUN /opt/venv/bin/python -m compileall -q /app
# PATH is spelled out: the stand-in base sets none, and "$PATH:" would add the cwd.
# matplotlib (which PyCaret imports) needs a writable config directory: /tmp is the only one.
# HOST: nginx listens on every interface of the container (the service's own default, for
# `make run`, is this machine only); the port is Docker's, EB's or ECS's to publish.
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    HOST=0.0.0.0 PORT=8000
USER 10001:10001
# Fail the build, not the deployment, when the trimmed image cannot load, verify (card,
# SHA-256, library versions) and run the committed model (load_model estimates a known record).
RUN python -c "from insurance_charges.paths import DEFAULT_MODEL_PATH; from insurance_charges.serving.model import load_model; load_model(DEFAULT_MODEL_PATH)"
EXPOSE 8000
# SageMaker may start it on another port than 8080 (SAGEMAKER_BIND_TO_PORT, in multi-container
# endpoints and inference pipelines) only if the image says it can.
LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true
# Docker's own view of health (docker ps, local runs); EB's load balancer probes /health too.
# start-period covers the measured start-up (model load) with a wide margin. The port is the
# one the launcher wrote once nginx listened: $PORT, or SageMaker's under `serve`.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-I", "-c", "import tempfile, urllib.request; port = open(tempfile.gettempdir() + '/insurance-charges/port').read().strip(); urllib.request.urlopen('http://127.0.0.1:' + port + '/health', timeout=2)"]
# The launcher is PID 1 (exec form): nginx on $PORT in front of gunicorn on a unix socket.
# SIGTERM from `docker stop` reaches it directly; nginx finishes what it holds (at most 4 s),
# then gunicorn stops, and it exits 0 inside Docker's 10 s. An ENTRYPOINT, so that `docker
# run IMAGE serve` (how SageMaker starts it) hands `serve` to the launcher; with no argument
# (EB, ECS) it serves on $PORT as ever. `train` (SageMaker training) runs no server: it trains
# from /opt/ml/input into /opt/ml/model, which the app user owns here (SageMaker mounts its own
# over them; a mount the user cannot write fails the job with one line).
ENTRYPOINT ["python", "-m", "insurance_charges.container"]
