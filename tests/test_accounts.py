"""Baton's own name on its staff pages, and the console's login and logout."""

import pytest

pytestmark = pytest.mark.django_db


def test_the_admin_is_branded_baton(client):
    page = client.get("/admin/login/").content.decode()

    assert "Baton administration" in page
    assert "Django administration" not in page


def test_the_console_sends_a_stranger_to_batons_own_login_page(client):
    response = client.get("/console/", follow=True)

    page = response.content.decode()
    assert response.redirect_chain[-1][0].startswith("/accounts/login/")
    assert "Log in to Baton" in page
    assert "Django administration" not in page


def test_an_agent_signs_in_reaches_the_console_and_logs_out(client, django_user_model):
    from tests.factories import give_role

    user = django_user_model.objects.create_user("ada", "ada@example.com", "a long passphrase")
    give_role(user, "agent")

    signed_in = client.post(
        "/accounts/login/", {"username": "ada", "password": "a long passphrase"}, follow=True
    )
    assert signed_in.redirect_chain[-1][0] == "/console/"
    assert "Log out" in signed_in.content.decode()

    signed_out = client.post("/accounts/logout/", follow=True)
    assert signed_out.redirect_chain[-1][0] == "/accounts/login/"
    assert client.get("/console/").status_code == 302  # the session is gone


def test_a_wrong_password_says_so_on_the_page(client, django_user_model):
    django_user_model.objects.create_user("ada", "ada@example.com", "a long passphrase")

    response = client.post("/accounts/login/", {"username": "ada", "password": "not it"})

    assert response.status_code == 200
    assert "did not match" in response.content.decode()
