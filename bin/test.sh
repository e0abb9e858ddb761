#!/bin/bash
# The assignment's smoke script: sends the example messages and webhooks, then reads
# the conversations back. Run it against a running service (make run). It prints each
# answer and its status, and exits non-zero if any call did not answer 2xx.

BASE_URL="${BASE_URL:-http://localhost:8080}"
CONTENT_TYPE="Content-Type: application/json"
FAILED=0

call() {
  local label="$1"; shift
  echo "$label"
  local output status
  output=$(curl -s -w "\nStatus: %{http_code}" "$@")
  echo "$output"
  echo
  status=$(printf '%s' "$output" | tail -n 1 | sed 's/Status: //')
  case "$status" in 2??) ;; *) FAILED=1 ;; esac
}

echo "=== Testing Messaging Service Endpoints ==="
echo "Base URL: $BASE_URL"
echo

call "1. Testing SMS send..." -X POST "$BASE_URL/api/messages/sms" -H "$CONTENT_TYPE" -d '{
    "from": "+12016661234",
    "to": "+18045551234",
    "type": "sms",
    "body": "Hello! This is a test SMS message.",
    "attachments": null,
    "timestamp": "2024-11-01T14:00:00Z"
  }'

call "2. Testing MMS send..." -X POST "$BASE_URL/api/messages/sms" -H "$CONTENT_TYPE" -d '{
    "from": "+12016661234",
    "to": "+18045551234",
    "type": "mms",
    "body": "Hello! This is a test MMS message with attachment.",
    "attachments": ["https://example.com/image.jpg"],
    "timestamp": "2024-11-01T14:00:00Z"
  }'

call "3. Testing Email send..." -X POST "$BASE_URL/api/messages/email" -H "$CONTENT_TYPE" -d '{
    "from": "user@usehatchapp.com",
    "to": "contact@gmail.com",
    "body": "Hello! This is a test email message with <b>HTML</b> formatting.",
    "attachments": ["https://example.com/document.pdf"],
    "timestamp": "2024-11-01T14:00:00Z"
  }'

call "4. Testing incoming SMS webhook..." -X POST "$BASE_URL/api/webhooks/sms" -H "$CONTENT_TYPE" -d '{
    "from": "+18045551234",
    "to": "+12016661234",
    "type": "sms",
    "messaging_provider_id": "message-1",
    "body": "This is an incoming SMS message",
    "attachments": null,
    "timestamp": "2024-11-01T14:00:00Z"
  }'

call "5. Testing incoming MMS webhook..." -X POST "$BASE_URL/api/webhooks/sms" -H "$CONTENT_TYPE" -d '{
    "from": "+18045551234",
    "to": "+12016661234",
    "type": "mms",
    "messaging_provider_id": "message-2",
    "body": "This is an incoming MMS message",
    "attachments": ["https://example.com/received-image.jpg"],
    "timestamp": "2024-11-01T14:00:00Z"
  }'

call "6. Testing incoming Email webhook..." -X POST "$BASE_URL/api/webhooks/email" -H "$CONTENT_TYPE" -d '{
    "from": "contact@gmail.com",
    "to": "user@usehatchapp.com",
    "xillio_id": "message-3",
    "body": "<html><body>This is an incoming email with <b>HTML</b> content</body></html>",
    "attachments": ["https://example.com/received-document.pdf"],
    "timestamp": "2024-11-01T14:00:00Z"
  }'

call "7. Testing get conversations..." -X GET "$BASE_URL/api/conversations" -H "$CONTENT_TYPE"

call "8. Testing get messages for conversation..." -X GET "$BASE_URL/api/conversations/1/messages" -H "$CONTENT_TYPE"

echo "=== Test script completed ==="
exit $FAILED
