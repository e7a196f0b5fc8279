# syntax=docker/dockerfile:1
# d3os-operator image: `docker build -t d3os-operator:0.1.0 .`
# Multi-stage: the wheel and its dependencies are installed into a virtualenv in the build stage; the
# final stage is python:3.11-slim with that virtualenv only (no compiler, no pip cache, no sources),
# running as an unprivileged user. config/manager/manager.yaml runs it with a read-only root filesystem.
# Runtime only: `pip install .` builds the d3os-operator wheel (d3os_core and d3os_operator); the development
# side (testenv/: local control plane, pytest plugin, harness, demo, cryptography) is never copied in.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/d3os
# dependencies first (a layer that survives source edits), then the project itself
COPY pyproject.toml README.md ./
COPY src ./src
COPY products ./products
RUN /opt/d3os/bin/pip install --upgrade pip setuptools wheel \
 && /opt/d3os/bin/pip install . \
 && /opt/d3os/bin/python -m compileall -q /opt/d3os \
 && /opt/d3os/bin/d3os-operator --version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="d3os-operator" \
      org.opencontainers.image.description="Kubernetes operator that installs the d3os dataservice product in dependency order" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/d3os/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# the same numeric user the Deployment asks for (runAsUser 65532), no login shell, no home to write
RUN groupadd --system --gid 65532 d3os \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin d3os
COPY --from=build /opt/d3os /opt/d3os
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["d3os-operator", "run"]
CMD ["--leader-elect", "--metrics-bind-address=:8080", "--log-format=json"]
