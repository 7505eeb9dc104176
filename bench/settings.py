"""Baton's production settings plus the bench app and its control endpoint (`/bench/control`).

Run the stack with `DJANGO_SETTINGS_MODULE=bench.settings`; everything else is `hub.settings`, read
from the same environment (DATABASE_URL, REDIS_URL, SECRET_KEY, DEBUG off).
"""

from hub.settings import *  # noqa: F403
from hub.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "bench"]
ROOT_URLCONF = "bench.urls"
