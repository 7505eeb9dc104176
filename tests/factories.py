from datetime import timedelta

import factory
from django.utils import timezone

from partners.models import Custody, Partner
from tracking.models import Shipment


class PartnerFactory(factory.django.DjangoModelFactory):
    """`partner.api_key` holds the plain key for the test to use."""

    class Meta:
        model = Partner
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"partner-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())
    kind = Partner.Kind.SUBCONTRACTOR
    adapter = "native"

    @factory.post_generation
    def api_key(obj, create, extracted, **kwargs):
        obj.api_key = obj.rotate_api_key()
        if create:
            obj.save(update_fields=["api_key_hash", "api_key_prefix"])


class ShipmentFactory(factory.django.DjangoModelFactory):
    """`shipment.token` holds the customer's plain tracking token."""

    class Meta:
        model = Shipment
        skip_postgeneration_save = True

    reference = factory.Sequence(lambda n: f"ORD-{10000 + n}")
    customer_name = factory.Faker("name", locale="en_GB")
    customer_email = factory.Sequence(lambda n: f"customer{n}@example.com")
    customer_phone = factory.Sequence(lambda n: f"+44 7700 9{n:05d}")
    address = "10 Downing Street, London"
    postcode = "SW1A 2AA"
    latitude = 51.5034
    longitude = -0.1276
    promised_from = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=2))
    promised_until = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=4))
    tracking_token_hash = factory.Sequence(lambda n: f"placeholder-{n}")
    tracking_token_expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=30))

    @factory.post_generation
    def token(obj, create, extracted, **kwargs):
        obj.token = obj.issue_tracking_token()
        if create:
            obj.save(update_fields=["tracking_token_hash", "tracking_token_expires_at"])


class CustodyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Custody

    partner = factory.SubFactory(PartnerFactory)
    shipment = factory.SubFactory(ShipmentFactory)
    partner_reference = factory.Sequence(lambda n: f"JOB-{n}")
    started_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))


def give_role(user, role: str) -> None:
    """Put `user` in the role's group, made as the roles migration makes it if a flush removed it."""
    from django.contrib.auth.models import Group, Permission

    from contactcentre.roles import ROLE_PERMISSIONS

    group, _ = Group.objects.get_or_create(name=role)
    for name in ROLE_PERMISSIONS[role]:
        app_label, codename = name.split(".")
        group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    user.groups.add(group)
