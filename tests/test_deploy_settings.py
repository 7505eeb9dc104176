"""Production settings: check --deploy is clean with the README's settings; weak keys are refused."""

import os
import subprocess
import sys

import pytest
from django.conf import settings

from partners import models as partner_models
from partners.models import Partner

README_PRODUCTION = {
    "DATABASE_URL": "postgres://baton@db.invalid:5432/baton",
    "REDIS_URL": "redis://redis.invalid:6379/0",
    "SECRET_KEY": "k3y-" + "abcdefghijklmnopqrstuvwxyz0123456789" * 2,
    "ALLOWED_HOSTS": "track.example.com",
    "SITE_URL": "https://track.example.com",
    "SECURE_COOKIES": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
}


# Not from the test run: a deployment sets none of these (Playwright's async flag fails check --deploy).
EXCLUDED = {"DEBUG", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE"}


def python(*args: str, unset: frozenset[str] = frozenset(), **env: str) -> subprocess.CompletedProcess:
    """Run Python in the project with the environment a deployment would have, plus `env`."""
    clean = {k: v for k, v in os.environ.items() if k not in EXCLUDED | unset}
    return subprocess.run(
        [sys.executable, *args],
        env={**clean, **env},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return python("manage.py", *args, **env)


def test_check_deploy_prints_no_warning_with_the_readme_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **README_PRODUCTION)

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    "key",
    [
        "short-key",
        "baton-development-only-secret-key-do-not-use-in-production",
        "django-insecure-" + "a1b2c3d4e5" * 5,
    ],
)
def test_production_refuses_a_short_or_default_secret_key(key):
    result = manage("check", **{**README_PRODUCTION, "SECRET_KEY": key})

    assert result.returncode != 0
    assert "SECRET_KEY is too short or a known default" in result.stderr


@pytest.mark.django_db
def test_pages_and_api_send_a_content_security_policy(client):
    response = client.get("/api/partner/v1/uploads/template.csv")

    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy


@pytest.mark.django_db
def test_the_bad_api_key_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(partner_models, "API_KEY_CACHE_MAX_ENTRIES", 50)
    partner_models._api_key_cache.clear()

    for n in range(200):
        assert Partner.for_api_key(f"bt_guess_{n}") is None

    assert len(partner_models._api_key_cache) <= 50


@pytest.mark.django_db
def test_console_and_admin_logins_are_rate_limited(client, django_user_model, settings):
    django_user_model.objects.create_user("agent", password="right-password", is_staff=True)
    wrong = [
        client.post("/admin/login/", {"username": "agent", "password": f"guess-{n}"}).status_code
        for n in range(settings.AXES_FAILURE_LIMIT)
    ]

    locked = client.post("/admin/login/", {"username": "agent", "password": "right-password"})

    # The form again with an error, until the limit-th failure locks the username from this address.
    assert wrong == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]
    assert locked.status_code == 429  # even the right password, until the cool-off ends


def test_beats_long_jobs_go_to_their_own_queue_when_one_is_named():
    script = (
        "import django; django.setup(); from hub.celery import app; "
        "route = lambda name: app.amqp.router.route({}, name)['queue'].name; "
        "print(route('partners.tasks.refresh_estimates'), route('partners.tasks.sweep_flags'), "
        "route('partners.tasks.process_inbound_messages'), route('tracking.tasks.send_outbound_message'))"
    )

    def queues(**env: str) -> list[str]:
        result = python(
            "-c", script, unset=frozenset({"CELERY_QUEUE"}), DJANGO_SETTINGS_MODULE="hub.settings", **env
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert queues(CELERY_PERIODIC_QUEUE="baton-periodic") == [
        "baton-periodic",
        "baton-periodic",
        "baton",
        "baton",
    ]
    assert queues() == ["baton"] * 4


def test_every_task_named_as_periodic_exists_and_is_scheduled_by_beat():
    from hub.celery import app

    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert set(settings.PERIODIC_TASKS) <= set(app.tasks) & scheduled


def test_the_wsgi_application_loads_its_views_and_freezes_them_out_of_the_collectors_sight():
    script = (
        "import gc, sys; import hub.wsgi; "
        "print(gc.get_freeze_count() > 50000, 'contactcentre.views' in sys.modules)"
    )
    result = python("-c", script, DJANGO_SETTINGS_MODULE="hub.settings")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]
