import pytest

from contactcentre import services

pytestmark = pytest.mark.django_db


def test_pages_render_for_every_role(client, agent, supervisor, operator, held_shipment):
    case = services.open_case(held_shipment, channel="phone", reason="late", opened_by=agent)
    for user in (agent, supervisor, operator):
        client.force_login(user)
        for url in [
            "/console/",
            "/console/find/?search=07700900123",
            "/console/shipments/ORD-1/",
            f"/console/cases/{case.pk}/",
        ]:
            response = client.get(url)
            assert response.status_code == 200, (user, url, response.content[:3000])
        for q in [
            "blind_spots",
            "late_risk",
            "eta_passed",
            "conflicts",
            "failed_attempts",
            "my_cases",
            "unassigned",
            "past_sla",
            "escalated",
            "unmatched",
        ]:
            assert client.get(f"/console/?queue={q}&age=1h&area=SW1A&partner=swift").status_code == 200
