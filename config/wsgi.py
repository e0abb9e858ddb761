import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from config.tracing import tracing_setup

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Before the application loads its middleware: the Django instrumentation adds its own.
tracing_setup(service="web")
application = get_wsgi_application()
if settings.PROVIDER_SANDBOX:
    from providers.sandbox.wsgi import sandbox_mounted

    application = sandbox_mounted(application)
