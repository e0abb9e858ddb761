"""Every client mistake is a 4xx in the one error envelope, and stores nothing."""

import json

import pytest

from conversations.models import Conversation
from messaging.models import Message
from tests.factories import EMAIL, SMS


def _error(response, status):
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] and error["message"]
    return error


def _nothing_stored():
    assert Message.objects.count() == 0
    assert Conversation.objects.count() == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"to": "8045551234"}, "to"),
        ({"to": "+1804555"}, "to"),
        ({"to": "not a number"}, "to"),
        ({"from": "user@example.com"}, "from"),
        ({"to": 18045551234}, "to"),
        ({"type": "fax"}, "type"),
        ({"type": "mms", "attachments": []}, "attachments"),
        ({"type": "sms", "attachments": ["https://example.com/a.jpg"]}, "attachments"),
        ({"type": "mms", "attachments": ["ftp://example.com/a.jpg"]}, "attachments.0"),
        ({"type": "mms", "attachments": ["javascript:alert(1)"]}, "attachments.0"),
        ({"type": "mms", "attachments": "https://example.com/a.jpg"}, "attachments"),
        ({"type": "mms", "attachments": [f"https://example.com/{i}.jpg" for i in range(11)]}, "attachments"),
        ({"body": "x" * 1601}, "body"),
        ({"body": ""}, "body"),
        ({"body": "   "}, "body"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": "2024-13-01T00:00:00Z"}, "timestamp"),
        ({"to": "+12016661234"}, "to"),
    ],
)
def test_bad_sms_fields_are_named_in_a_400(api, change, field):
    error = _error(api.post("/api/messages/sms", SMS | change, format="json"), 400)

    assert error["code"] == "invalid_request"
    assert field in error["fields"], error
    _nothing_stored()


@pytest.mark.parametrize("missing", ["from", "to"])
def test_missing_address_is_a_400(api, missing):
    payload = {k: v for k, v in SMS.items() if k != missing}

    error = _error(api.post("/api/messages/sms", payload, format="json"), 400)

    assert error["fields"][missing] == ["This field is required."]
    _nothing_stored()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"to": "not-an-email"}, "to"),
        ({"from": "+12016661234"}, "from"),
        ({"body": ""}, "body"),
        ({"subject": "two\r\nlines"}, "subject"),
        ({"to": "user@usehatchapp.com"}, "to"),
    ],
)
def test_bad_email_fields_are_named_in_a_400(api, change, field):
    error = _error(api.post("/api/messages/email", EMAIL | change, format="json"), 400)

    assert field in error["fields"]
    _nothing_stored()


@pytest.mark.parametrize("text", ["nul \x00 inside", "lone surrogate \ud800"])
def test_text_that_cannot_be_stored_is_a_400_not_a_500(api, text):
    raw = json.dumps({"from": "+12016661234", "to": "+18045551234", "body": text})  # \u0000, \ud800 escapes

    error = _error(api.post("/api/messages/sms", raw, content_type="application/json"), 400)

    assert "body" in error.get("fields", {}) or "body" in error["message"]
    _nothing_stored()


@pytest.mark.parametrize("raw", ["{not json", "[1, 2", '{"body": NaN}', '{"a": 1} trailing'])
def test_malformed_json_is_a_400(api, raw):
    error = _error(api.post("/api/messages/sms", raw, content_type="application/json"), 400)

    assert error["code"] == "malformed_request"
    _nothing_stored()


@pytest.mark.parametrize("raw", ["", "[]", '"text"', "42", "null"])
def test_json_that_is_not_an_object_is_a_400(api, raw):
    _error(api.post("/api/messages/sms", raw, content_type="application/json"), 400)
    _nothing_stored()


def test_deeply_nested_json_is_a_400(api):
    raw = '{"attachments": ' + "[" * 5000 + "]" * 5000 + "}"

    error = _error(api.post("/api/messages/sms", raw, content_type="application/json"), 400)

    assert "nested" in error["message"]


def test_wrong_content_type_is_a_415(api):
    error = _error(api.post("/api/messages/sms", "from=+12016661234", content_type="text/plain"), 415)

    assert error["code"] == "unsupported_media_type"
    _nothing_stored()


def test_oversized_body_is_a_413(api, settings):
    settings.MAX_REQUEST_BYTES = 1000
    raw = '{"body": "' + "x" * 2000 + '"}'

    error = _error(api.post("/api/messages/sms", raw, content_type="application/json"), 413)

    assert error["code"] == "payload_too_large"
    _nothing_stored()


def test_naive_timestamp_is_taken_as_utc(api):
    body = api.post("/api/messages/sms", SMS | {"timestamp": "2024-11-01T14:00:00"}, format="json").json()

    assert body["timestamp"] == "2024-11-01T14:00:00Z"


@pytest.mark.parametrize(
    ("path", "payload", "field", "kind"),
    [
        ("/api/messages/sms", SMS | {"body": 12345}, "body", "a number"),
        ("/api/messages/sms", SMS | {"body": 1.5}, "body", "a number"),
        ("/api/messages/sms", SMS | {"body": ["hi"]}, "body", "an array"),
        ("/api/messages/sms", SMS | {"from": 12016661234}, "from", "a number"),
        ("/api/messages/email", EMAIL | {"subject": 7}, "subject", "a number"),
        ("/api/messages/email", EMAIL | {"body": {"html": "x"}}, "body", "an object"),
    ],
)
def test_string_fields_take_json_strings_only(api, path, payload, field, kind):
    error = _error(api.post(path, payload, format="json"), 400)

    assert error["fields"][field] == [f"Must be a string, not {kind}."]
    _nothing_stored()


def test_a_batch_item_with_a_number_for_its_body_is_refused_by_name(api):
    response = api.post("/api/messages/batch", {"messages": [SMS | {"body": 12345}, SMS]}, format="json")

    assert response.status_code == 202, response.content
    first, second = response.json()["results"]
    assert "body" in first["error"]["fields"]
    assert second["status"] == "queued"
    assert Message.objects.count() == 1


@pytest.mark.parametrize("page_size", ["abc", "0", "-5", "201", "100000", "1.5", ""])
def test_an_impossible_page_size_is_a_400_that_says_the_range(api, page_size):
    error = _error(api.get(f"/api/conversations?page_size={page_size}"), 400)

    assert error["fields"]["page_size"] == ["Must be an integer from 1 to 200."]


@pytest.mark.parametrize("page_size", ["1", "200"])
def test_page_sizes_at_the_bounds_are_served(api, page_size):
    assert api.get(f"/api/conversations?page_size={page_size}").status_code == 200


def test_the_schema_documents_the_page_size_range(client, db):
    schema = client.get("/api/schema", HTTP_ACCEPT="application/json").json()
    parameters = schema["paths"]["/api/conversations"]["get"]["parameters"]

    (page_size,) = [p for p in parameters if p["name"] == "page_size"]
    assert page_size["schema"] == {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}


def test_the_schema_bounds_a_batch_as_the_server_does(client, db, settings):
    schema = client.get("/api/schema", HTTP_ACCEPT="application/json").json()
    request = next(s for name, s in schema["components"]["schemas"].items() if name.startswith("BatchSend"))

    messages = request["properties"]["messages"]
    assert (messages["minItems"], messages["maxItems"]) == (1, settings.BATCH_MAX_MESSAGES)


@pytest.mark.parametrize(
    ("path", "name"),
    [("/api/messages/{message_id}", "message_id"), ("/api/conversations/{conversation_id}", "conversation_id")],
)
def test_the_schema_types_path_ids_as_integers(client, db, path, name):
    schema = client.get("/api/schema", HTTP_ACCEPT="application/json").json()

    (parameter,) = [p for p in schema["paths"][path]["get"]["parameters"] if p["name"] == name]
    assert parameter["schema"]["type"] == "integer"
