# convsync: scheduled conversion sync worker.
#   docker build -t convsync .
#   docker run -d --name convsync -v convsync-data:/data -v "$PWD/config:/config:ro" \
#       -p 8080:8080 -p 8090:8090 convsync
# ./config is a folder holding convsync.yaml (the image reads /config/convsync.yaml,
# CONVSYNC_CONFIG) and the CSV exports and secret files it names by relative path.
# The ledger (SQLite) lives in the /data volume, which uid 10001 must be able to write:
# a named volume is; a host folder needs `chown -R 10001` first. compose.yaml runs it
# with its ledger on PostgreSQL.
#
# python:3.11-slim: the Python CI tests on. Dependencies are installed from
# requirements/runtime.txt (exact versions with hashes, `make lock`) in their own layer,
# so a change to src/ rebuilds only the last steps.

# --- builder: a venv with convsync and its locked dependencies, and no pip ------------
FROM python:3.11-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# /opt/tools: pip, setuptools and wheel at the versions of requirements/build.txt, for
# this stage only. /opt/venv: what the image runs, made without pip; the tools' pip
# installs into it (--python) by hash, wheels only, no dependency resolution.
COPY requirements/build.txt requirements/runtime.txt /build/requirements/
RUN python -m venv /opt/tools \
    && /opt/tools/bin/pip install --no-cache-dir --require-hashes --no-deps \
        -r /build/requirements/build.txt \
    && python -m venv --without-pip /opt/venv \
    && /opt/tools/bin/pip --python /opt/venv/bin/python install --no-cache-dir \
        --require-hashes --no-deps --only-binary :all: -r /build/requirements/runtime.txt

WORKDIR /build
COPY pyproject.toml README.md ./
COPY src/ src/

# The wheel is built with the locked setuptools/wheel (no build isolation, which would
# fetch them unpinned); --check-build-dependencies fails if they differ from pyproject's
# [build-system] requires. convsync-probe: the HEALTHCHECK's script, run by path.
RUN /opt/tools/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation \
        --check-build-dependencies --wheel-dir /build/dist . \
    && /opt/tools/bin/pip --python /opt/venv/bin/python install --no-cache-dir --no-deps \
        --no-index /build/dist/convsync-*.whl \
    && ln -s "$(/opt/venv/bin/python -c 'import convsync.service.probe as p; print(p.__file__)')" \
        /opt/venv/bin/convsync-probe

# --- runtime: the venv only, run as a fixed non-root user ----------------------------
FROM python:3.11-slim

# Fixed ids so a host directory mounted at /data can be chown'ed to 10001:10001. The
# base image's own pip, setuptools and wheel go too: nothing here installs packages.
RUN groupadd --system --gid 10001 convsync \
    && useradd --system --uid 10001 --gid convsync --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin convsync \
    && mkdir -p /data /config \
    && chown convsync:convsync /data \
    && if python -m pip --version >/dev/null 2>&1; then \
        python -m pip uninstall --yes --quiet pip setuptools wheel; fi

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

# The probe imports only `socket` (`convsync health` starts the CLI: ~0.4 s of CPU).
# While starting, it asks every 2 s, so the container turns healthy within seconds;
# failures in the first 60 s (migrations, a first sync) do not count.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --start-interval=2s --retries=3 \
    CMD ["python", "-I", "/opt/venv/bin/convsync-probe"]

ENTRYPOINT ["convsync"]
CMD ["run"]
