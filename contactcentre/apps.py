from django.apps import AppConfig


class ContactcentreConfig(AppConfig):
    name = "contactcentre"

    def ready(self) -> None:
        from contactcentre import proactive
        from contactcentre.notifications import on_shipment_change
        from tracking import changes, outbox

        changes.subscribe(on_shipment_change)
        # Operations' rules act when the sweep raises a flag (docs/flags.md).
        changes.subscribe(proactive.on_shipment_change)
        outbox.on_purpose_failed("partner.chase", proactive.on_chase_failed)
