# One image for web, Celery worker and Celery beat.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    STATIC_ROOT=/app/staticfiles \
    MEDIA_ROOT=/app/media \
    NUMBA_CACHE_DIR=/tmp/numba-cache

# postgresql-client-15: pg_dump/pg_restore of the server's major version, for
# manage.py backup and restore.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       libgdal32 libgeos-c1v5 libproj25 libsqlite3-mod-spatialite gettext curl \
       fonts-wqy-microhei postgresql-client-15 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock

COPY . .
# Static files and catalogues are built into the image; the build-time secret
# only satisfies settings loading and signs nothing.
RUN SECRET_KEY=build-only ALLOWED_HOSTS=localhost \
    DATABASE_URL=postgis://build:build@localhost/build REDIS_URL=redis://localhost:6379/0 \
    sh -c "python manage.py compilemessages --ignore=.venv && python manage.py collectstatic --noinput" \
    && useradd --system --uid 1000 --home /app registry \
    && mkdir -p /app/media && chown registry /app/media

USER registry
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
