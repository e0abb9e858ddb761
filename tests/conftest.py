import io
import json
import logging

import pytest
import responses
from django.core.cache import cache
from rest_framework.test import APIClient

from config.logs import formatter_for
from providers import registry
from tests.sandbox_harness import InProcessSandbox


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate limits, breakers and sandbox counters start from nothing in every test."""
    cache.clear()
    registry.reset()
    yield
    registry.reset()


@pytest.fixture
def api(db) -> APIClient:
    return APIClient()


@pytest.fixture
def sandbox(db, settings):
    """The provider sandbox, in-process (see sandbox_harness.py)."""
    settings.PROVIDER_TIMEOUT_SECONDS = 0.5
    settings.MESSAGING_RETRY_BASE_SECONDS = 0.01
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield InProcessSandbox(mock)


@pytest.fixture
def json_logs():
    """A function returning every line logged in this process since the test began, as
    the production handler writes them (JSON, masked), parsed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter_for("json"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
