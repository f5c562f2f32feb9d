# For comparison only (docs/deploy/elastic-beanstalk.md#the-image): the plain single-stage
# image the tutorials build, on the same base, with the same app and model copied in. Not deployed.
#   docker build -f docker/plain.Dockerfile -t insurance-charges:plain .
# (.dockerignore lets in the same files for both builds.)
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install pycaret==3.3.2 flask gunicorn six
WORKDIR /app
COPY model/ model/
COPY application.py gunicorn.conf.py ./
COPY insurance_charges/ insurance_charges/
CMD ["/opt/venv/bin/gunicorn", "--config", "/app/gunicorn.conf.py", "application:application"]
