"""Fuzz every operation of /api/schema/ with schemathesis: no 5xx, nothing outside the documented schema.

Generated requests go to the WSGI app in-process, authenticated the way each API expects (a staff
token for the agent API, a partner key for the partner API), against a database that holds a real
partner, shipments and custody, so that path parameters sometimes hit existing objects.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token

from hub.wsgi import application
from tests.factories import CustodyFactory, PartnerFactory, ShipmentFactory, give_role

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)

KNOWN = {"reference": "FUZZ-1", "slug": "fuzz-fleet", "adapter": "native"}


@schemathesis.hook
def map_path_parameters(ctx, path_parameters):
    """Half the time, point path parameters at objects that exist, so the 200 paths are fuzzed too."""
    if path_parameters and hash(repr(sorted(path_parameters.items()))) % 2:
        for name, value in KNOWN.items():
            if name in path_parameters:
                path_parameters[name] = value
    return path_parameters


# Two checks judge what the API accepts rather than what it answers. A schema-valid body still gets
# a documented 400 when it breaks a rule no JSON schema states (the partner must exist, a status
# event needs a status); and like DRF everywhere, Baton takes 42 for "42" in a string field.
NOT_BATON_RULES = [schemathesis.checks.positive_data_acceptance, schemathesis.checks.negative_data_rejection]


@pytest.fixture
def credentials(db, django_user_model):
    staff = django_user_model.objects.create_user("fuzz-agent", "agent@example.com", "pw", is_staff=True)
    # Agent and operations: every console endpoint is reachable, so its 2xx paths are fuzzed too.
    give_role(staff, "agent")
    give_role(staff, "operations")
    partner = PartnerFactory(slug="fuzz-fleet", adapter="native")
    PartnerFactory(slug="fuzz-courier")
    for i in range(3):
        shipment = ShipmentFactory(reference=f"FUZZ-{i}")
        CustodyFactory(partner=partner, shipment=shipment, partner_reference=f"FZ-{i}")
    return {
        "/api/v1/": {"Authorization": f"Token {Token.objects.create(user=staff).key}"},
        "/api/partner/v1/": {"Authorization": f"Bearer {partner.api_key}"},
    }


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_api_answers_every_generated_request_within_its_documented_schema(case, credentials):
    headers = next((h for prefix, h in credentials.items() if case.path.startswith(prefix)), {})
    case.call_and_validate(headers=headers, excluded_checks=NOT_BATON_RULES)


# --- what the fuzzer found, pinned down -------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["offset=null", "limit=abc", "offset=%C2%B2", "limit=-1"])
def test_a_page_limit_or_offset_that_is_not_a_whole_number_is_refused(agent_client, query):
    response = agent_client.get(f"/api/v1/shipments?{query}")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid"


@pytest.mark.django_db
def test_shipments_filter_by_flag_on_every_database(agent_client):
    flagged = ShipmentFactory(reference="FLAG-1", flags=["conflict"])
    ShipmentFactory(reference="FLAG-2", flags=[])

    response = agent_client.get("/api/v1/shipments", {"flag": "conflict"})

    assert response.status_code == 200
    assert [s["reference"] for s in response.json()["results"]] == [flagged.reference]


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["latitude", "longitude"])
def test_a_boolean_is_not_a_coordinate(agent_client, field):
    body = {"reference": "B-1", "customer_name": "N", "address": "1 A St", "postcode": "N1 1AA", field: True}

    response = agent_client.post("/api/v1/shipments", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["fields"]


@pytest.mark.django_db
def test_a_promised_window_before_2000_is_refused(agent_client):
    body = {
        "reference": "OLD-1",
        "customer_name": "N",
        "address": "1 A St",
        "postcode": "N1 1AA",
        "promised_from": "0210-09-06T16:06:40Z",
    }

    response = agent_client.post("/api/v1/shipments", body, format="json")

    assert response.status_code == 400
    assert "promised_from" in response.json()["fields"]


@pytest.mark.django_db
def test_an_unknown_api_path_answers_with_the_json_error(client):
    response = client.get("/webhooks/%F0%A6%8E%8F/%C3%9D/")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
