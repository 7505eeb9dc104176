"""Agents sign in and out on Baton's own pages."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(django_user_model):
    return django_user_model.objects.create_user("agent", "agent@example.com", "s3cret-pass", is_staff=True)


def test_the_console_sends_a_stranger_to_batons_login_page(client):
    response = client.get("/console/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/console/"
    page = client.get(response["Location"]).content.decode()
    assert "Sign in to Baton" in page
    assert "Django administration" not in page
    assert '<label for="id_username">' in page
    assert 'id="id_username"' in page
    assert '<label for="id_password">' in page
    assert 'id="id_password"' in page


def test_an_agent_signs_in_reaches_the_console_and_logs_out(client, agent):
    signed_in = client.post(
        "/accounts/login/", {"username": "agent", "password": "s3cret-pass", "next": "/console/"}
    )
    assert (signed_in.status_code, signed_in["Location"]) == (302, "/console/")
    console = client.get("/console/").content.decode()
    assert "Log out" in console
    assert 'action="/accounts/logout/"' in console

    logged_out = client.post("/accounts/logout/")

    assert (logged_out.status_code, logged_out["Location"]) == (302, "/accounts/login/")
    assert client.get("/console/").status_code == 302


def test_a_wrong_password_says_so_on_the_page(client, agent):
    response = client.post("/accounts/login/", {"username": "agent", "password": "nope"})

    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()


def test_the_admin_is_branded_baton(client):
    page = client.get("/admin/login/").content.decode()

    assert "Baton administration" in page
    assert "Django administration" not in page
