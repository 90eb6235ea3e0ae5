"""WSGI entry point (gunicorn exsync.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exsync.settings")
application = get_wsgi_application()
