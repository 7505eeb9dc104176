import pytest
import yaml
from openapi_spec_validator import validate


@pytest.mark.django_db
def test_schema_is_valid_openapi_3_and_documents_errors(client):
    response = client.get("/api/schema/")

    assert response.status_code == 200
    spec = yaml.safe_load(response.content)
    validate(spec)
    assert spec["openapi"].startswith("3.")
    events = spec["paths"]["/api/partner/v1/events"]["post"]["responses"]
    assert {"202", "400", "401", "404", "413"} <= set(events)
    assert "404" in spec["paths"]["/api/v1/shipments/{reference}/timeline"]["get"]["responses"]


@pytest.mark.django_db
def test_api_docs_load_no_asset_from_a_cdn(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "cdn" not in html.lower()
    assert "/static/drf_spectacular_sidecar/" in html
