"""Settings for the cost ledger's servers (bench/ledger.py): production's, with the
ledger's staged endpoints mounted and, per server, only some of the middleware.

BENCH_LEDGER_MIDDLEWARE picks the middleware: `none`, `logging` (the request id and its
log line), `metrics` (that and the request metrics) or `all` (production's list).
"""

import os

from config.settings import *  # noqa: F403
from config.settings import MIDDLEWARE as PRODUCTION_MIDDLEWARE

ROOT_URLCONF = "bench.ledger_urls"

_LOGGING = ["config.middleware.RequestIdMiddleware"]
_METRICS = ["config.middleware.RequestMetricsMiddleware", *_LOGGING]
MIDDLEWARE = {
    "none": [],
    "logging": _LOGGING,
    "metrics": _METRICS,
    "all": PRODUCTION_MIDDLEWARE,
}[os.environ.get("BENCH_LEDGER_MIDDLEWARE", "all")]
