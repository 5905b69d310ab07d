# tradingapp backend image: one image, several commands (backend, websocket, worker, consumer,
# feed, migrate); docker-compose.yml picks the command per service.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    FLASK_APP=wsgi \
    PORT=8080

# curl for the HEALTHCHECK; nothing else from apt (psycopg ships its own libpq in the binary wheel).
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app

WORKDIR /app
# The hashed lock first (make lock): the image gets exactly the tested tree, and code changes
# rebuild only the last layers.
COPY requirements.lock .
RUN pip install --require-hashes -r requirements.lock

# Code stays owned by root: the app user can read it, not change it.
COPY . .
USER app

EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=10s --start-period=40s --retries=3 \
    CMD curl -fsS "http://localhost:${PORT}/health" || exit 1

CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
