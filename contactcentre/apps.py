from django.apps import AppConfig


class ContactcentreConfig(AppConfig):
    name = "contactcentre"

    def ready(self) -> None:
        from contactcentre.notifications import on_shipment_change
        from tracking import changes

        changes.subscribe(on_shipment_change)
