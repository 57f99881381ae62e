# convsync: scheduled conversion sync worker.
#   docker build -t convsync .
#   docker run -v convsync-data:/data -v ./config:/config:ro convsync
# The ledger (SQLite) lives in the /data volume; the config file is mounted at /config.

# --- builder: a self-contained venv with convsync and its dependencies -------------
FROM python:3.12-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /build
COPY pyproject.toml README.md ./
COPY src/ src/

# pip is pinned so a build is repeatable; setuptools/wheel come from the
# [build-system] table into pip's isolated build environment, not into the venv.
RUN pip install --no-cache-dir pip==26.3 \
    && pip install --no-cache-dir .

# --- runtime: the venv only, run as a fixed non-root user ----------------------------
FROM python:3.12-slim

# Fixed ids so a host directory mounted at /data can be chown'ed to 10001:10001.
RUN groupadd --system --gid 10001 convsync \
    && useradd --system --uid 10001 --gid convsync --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin convsync \
    && mkdir -p /data /config \
    && chown convsync:convsync /data

COPY --from=builder /opt/venv /opt/venv

ENV CONVSYNC_CONFIG=/config/convsync.yaml \
    CONVSYNC_DATABASE_URL=sqlite:////data/convsync.db \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH

WORKDIR /data
# Numeric, so Kubernetes runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# Declared after the chown so a new named volume starts owned by convsync.
VOLUME ["/data"]

# health and metrics endpoint of `convsync run`; its webhook endpoint (webhooks.port)
EXPOSE 8080 8090

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s CMD ["convsync", "health"]

ENTRYPOINT ["convsync"]
CMD ["run"]
