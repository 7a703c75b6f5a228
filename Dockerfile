# One image for every component of sifund; the command chooses which one runs (see infra/compose.yaml and
# infra/k8s/): the gateway by default, or a service, e.g.
#   docker run sifund services.accounts.app:create_app --host 0.0.0.0 --port 8001
# or an operator's command:   docker run --entrypoint sifund sifund backup /backups/2026-12-06
# Not built in this repository's CI (no base-image registry here): tests/operations/test_deployment_files.py parses it.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY services ./services
COPY gateway ./gateway
COPY sifund ./sifund
RUN python -m venv /opt/sifund && /opt/sifund/bin/pip install --no-cache-dir .

FROM python:3.11-slim
# pg_dump / pg_restore for `sifund backup` and `sifund restore` on PostgreSQL.
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/sifund /opt/sifund
# The source tree first on the path as well: the migration scripts (alembic env.py, versions/) are data files that a
# wheel built from pyproject's package list would not carry.
COPY --from=build /src /opt/sifund/src
RUN useradd --system --uid 10001 --home-dir /var/lib/sifund --create-home sifund
USER 10001
WORKDIR /var/lib/sifund
ENV PATH=/opt/sifund/bin:$PATH \
    PYTHONPATH=/opt/sifund/src \
    PYTHONUNBUFFERED=1 \
    SIFUND_DATA_DIR=/var/lib/sifund \
    SIFUND_GC_FREEZE_AFTER_STARTUP=true
EXPOSE 8000 8001 8002 8003 8004
ENTRYPOINT ["uvicorn", "--factory", "--timeout-graceful-shutdown", "3", "--no-server-header"]
CMD ["gateway.app:create_app", "--host", "0.0.0.0", "--port", "8000"]
