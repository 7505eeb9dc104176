from django.apps import AppConfig


class PartnersConfig(AppConfig):
    name = "partners"

    def ready(self) -> None:
        from partners import transports

        transports.register()
