import pytest

from contactcentre import roles
from tests.factories import CustodyFactory, PartnerFactory, ShipmentFactory, give_role


@pytest.fixture
def make_user(db, django_user_model):
    def make(username: str, role: str | None = None):
        user = django_user_model.objects.create_user(username, f"{username}@example.com", "pw")
        if role:
            give_role(user, role)
        return django_user_model.objects.get(pk=user.pk)  # fresh: no cached permissions

    return make


@pytest.fixture
def agent(make_user):
    return make_user("alice", roles.AGENT)


@pytest.fixture
def other_agent(make_user):
    return make_user("bob", roles.AGENT)


@pytest.fixture
def supervisor(make_user):
    return make_user("sam", roles.SUPERVISOR)


@pytest.fixture
def operator(make_user):
    return make_user("olly", roles.OPERATIONS)


@pytest.fixture
def held_shipment(db):
    partner = PartnerFactory(slug="swift", name="Swift Couriers", ops_email="ops@swift.example")
    shipment = ShipmentFactory(reference="ORD-1", customer_phone="+44 7700 900123")
    custody = CustodyFactory(partner=partner, shipment=shipment, partner_reference="SW-9")
    shipment.current_custody = custody
    shipment.save(update_fields=["current_custody"])
    return shipment


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
