from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "tracking"

    def ready(self) -> None:
        from tracking import changes, outbox, transports, webhooks

        outbox.register_transport("email", transports.send_email)
        outbox.register_transport("sms", transports.send_sms)
        outbox.register_transport(
            webhooks.TRANSPORT, webhooks.send_merchant_webhook, on_failed=webhooks.on_message_failed
        )
        changes.subscribe(webhooks.on_shipment_change)
