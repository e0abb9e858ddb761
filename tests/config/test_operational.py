import pytest

from config import health


def test_health_answers_without_touching_anything(client):
    response = client.get("/health")

    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_ready_checks_database_broker_and_cache(client):
    response = client.get("/ready")

    assert response.status_code == 200, response.json()
    assert set(response.json()["checks"]) == {"database", "broker", "cache"}
    assert all(c["status"] == "ok" for c in response.json()["checks"].values())


@pytest.mark.django_db
def test_ready_is_503_naming_the_failed_check(client, monkeypatch):
    def down():
        raise ConnectionRefusedError("broker down")

    monkeypatch.setitem(health.CHECKS, "broker", down)

    response = client.get("/ready")

    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == {"status": "error", "error": "ConnectionRefusedError"}


@pytest.mark.django_db
def test_metrics_are_exposed_for_prometheus(client):
    client.get("/health")

    response = client.get("/metrics")

    assert response.status_code == 200
    assert b"django_http_requests_total_by_method_total" in response.content


@pytest.mark.django_db
def test_openapi_schema_describes_every_endpoint(client):
    response = client.get("/api/schema", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in [
        "/api/messages/sms",
        "/api/messages/email",
        "/api/webhooks/sms",
        "/api/webhooks/email",
        "/api/conversations",
        "/api/conversations/{conversation_id}",
        "/api/conversations/{conversation_id}/messages",
        "/api/messages/{message_id}",
    ]:
        assert path in paths, path
    send = paths["/api/messages/sms"]["post"]
    assert "202" in send["responses"] and "400" in send["responses"]
    assert "from" in response.json()["components"]["schemas"]["SmsSendRequest"]["properties"]


@pytest.mark.django_db
def test_swagger_ui_is_served(client):
    response = client.get("/api/docs")

    assert response.status_code == 200 and b"swagger" in response.content.lower()


@pytest.mark.django_db
def test_unknown_paths_answer_json_404(client):
    response = client.get("/api/nothing-here")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_every_response_carries_a_request_id(client):
    mine = client.get("/health", HTTP_X_REQUEST_ID="abc-123")
    made = client.get("/health", HTTP_X_REQUEST_ID="bad id with spaces")

    assert mine["X-Request-ID"] == "abc-123"
    assert made["X-Request-ID"] != "bad id with spaces" and len(made["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_unexpected_errors_answer_json_500_without_a_traceback(client, monkeypatch):
    def crash(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("conversations.apis.conversation_list", crash)
    client.raise_request_exception = False

    response = client.get("/api/conversations")

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert b"secret internals" not in response.content


def test_metrics_in_production_are_refused_without_a_token_configured(client, db, settings):
    settings.IS_PRODUCTION, settings.METRICS_TOKEN = True, ""

    response = client.get("/metrics")

    assert response.status_code == 403
    assert "METRICS_TOKEN" in response.json()["error"]["message"]


@pytest.mark.parametrize("production", [True, False])
def test_metrics_with_a_token_want_it_as_a_bearer(client, db, settings, production):
    settings.IS_PRODUCTION, settings.METRICS_TOKEN = production, "s3cret-token"

    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    answered = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert answered.status_code == 200
    assert b"django_http_requests_total_by_method_total" in answered.content
