"""Baton's own name on its staff pages (the console's login and logout are tested in tests/contactcentre)."""

import pytest

pytestmark = pytest.mark.django_db


def test_the_admin_is_branded_baton(client):
    page = client.get("/admin/login/").content.decode()

    assert "Baton administration" in page
    assert "Django administration" not in page
