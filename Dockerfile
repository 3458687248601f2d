# Nexus production image: gunicorn processes serving with waitress, via `pserve production.ini`.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY nexus_pyramid ./nexus_pyramid
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --upgrade pip "setuptools>=69,<82" wheel \
 && /opt/venv/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NEXUS_ENV=production \
    WEB_CONCURRENCY=4 \
    PORT=6543
RUN groupadd --system nexus && useradd --system --gid nexus --home-dir /app --shell /usr/sbin/nologin nexus
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=nexus:nexus production.ini development.ini ./
COPY --chown=nexus:nexus alembic ./alembic
USER nexus
EXPOSE 6543
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import os, urllib.request, sys; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '6543'), timeout=2); sys.exit(0)" || exit 1
# gunicorn reads WEB_CONCURRENCY (workers) and PORT (0.0.0.0:$PORT) above; override them at run time.
# SIGTERM makes gunicorn stop accepting and answer the requests already received (graceful_timeout).
STOPSIGNAL SIGTERM
CMD ["pserve", "production.ini"]
