import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
application = get_wsgi_application()

# Import every view now rather than on the first request, then take everything loaded at start-up
# out of the garbage collector's sight (gc.freeze). A full collection otherwise re-scans those
# ~125,000 long-lived objects and stalls the request it lands in for about 50 ms: they were the
# console bench's p99 outliers. Forked workers also keep sharing these memory pages.
get_resolver().url_patterns  # noqa: B018 (loads the URLconf and, with it, the views)
gc.freeze()
