# A small image that checks its settings, migrates, then serves the API as a non-root user.
# Orchestrators that migrate in a separate step (a Kubernetes Job, a compose one-shot
# service) run `python -m app.cli migrate` there and may start replicas with the uvicorn
# command alone; replicas that migrate at start wait for each other (advisory lock).
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
RUN python -m venv /opt/venv && /opt/venv/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    APP_ENV=production MEDIA_DIR=/var/lib/liaison/media
RUN useradd --system --uid 10001 --home-dir /srv liaison \
    && mkdir -p /var/lib/liaison/media && chown -R liaison /var/lib/liaison
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv
COPY --chown=liaison alembic.ini ./
COPY --chown=liaison migrations ./migrations
USER liaison
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz').status == 200 else 1)"
# WEB_CONCURRENCY sets the number of uvicorn worker processes. Client addresses behind a
# proxy come from TRUSTED_PROXIES (the app's own middleware), so uvicorn's are switched off.
CMD ["sh", "-c", "python -m app.cli check && python -m app.cli migrate && exec uvicorn --factory app.main:create_app --host 0.0.0.0 --port 8000 --workers ${WEB_CONCURRENCY:-2} --no-proxy-headers"]
