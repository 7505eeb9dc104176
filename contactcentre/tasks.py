from celery import shared_task

from contactcentre import figures


@shared_task
def materialise_contact_figures() -> int:
    """Recompute the last days' contact-centre figures (contacts follow messages, cases close later)."""
    return figures.materialise_recent()
