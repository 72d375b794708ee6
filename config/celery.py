"""The Celery app. Periodic jobs are declared here, in one beat schedule."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("registry")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Filled in by the apps' periodic jobs (ledger verification, request expiry, ...).
app.conf.beat_schedule = {}
