from django.db import models


class ControlRow(models.Model):
    """One row per control request: the least a partner-facing endpoint can do with a request."""

    partner_id = models.BigIntegerField()
    body = models.BinaryField()
    received_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"control row {self.pk}"
