from django.apps import AppConfig


class ContactcentreConfig(AppConfig):
    name = "contactcentre"
