from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "tracking"

    def ready(self) -> None:
        from tracking import outbox, transports

        outbox.register_transport("email", transports.send_email)
        outbox.register_transport("sms", transports.send_sms)
