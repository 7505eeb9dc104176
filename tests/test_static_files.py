"""Static files come from the app itself (WhiteNoise): API docs and admin work under gunicorn alone."""

import re

import pytest
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def collected(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path / "static"
    call_command("collectstatic", interactive=False, verbosity=0)
    return settings.STATIC_ROOT


def test_the_api_docs_page_and_every_file_it_needs_are_served(collected, admin_user):
    client = Client()  # a new handler: the middleware reads the collected directory
    client.force_login(admin_user)
    page = client.get("/api/docs/")
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.content.decode())

    assert page.status_code == 200
    assert any(a.endswith(".css") for a in assets)
    assert any(a.endswith(".js") for a in assets)
    assert {asset: client.get(asset).status_code for asset in assets} == dict.fromkeys(assets, 200)


def test_the_admin_is_styled(collected):
    page = Client().get("/admin/login/")
    stylesheets = re.findall(r'href="(/static/admin/css/[^"]+)"', page.content.decode())

    assert stylesheets
    response = Client().get(stylesheets[0])
    assert response.status_code == 200
    assert b"".join(response.streaming_content if response.streaming else [response.content])
