"""Structured logs: one JSON object per line in production (LOG_FORMAT=json), a readable
line locally (LOG_FORMAT=console). Our own code and every library log through the same
chain, so each line carries the request id and the task bound in the context, and
phone numbers, email addresses and secrets are masked before anything is written.

Use `structlog.get_logger(__name__)` with key-value pairs for lines worth querying;
plain `logging.getLogger(__name__)` calls are rendered the same way.
"""

import json
import logging
import re
from typing import Any

import orjson
import structlog

# E.164 numbers (also URL-encoded, as in query strings): keep the country and area
# prefix and the last three digits, enough to tell numbers apart without exposing them.
_PHONE = re.compile(r"(?P<plus>\+|%2[Bb])(?P<digits>\d{7,15})\b")
_EMAIL = re.compile(r"\b(?P<first>[A-Za-z0-9])[A-Za-z0-9._%+-]*@(?P<domain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)\b")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_SECRET_KEYS = re.compile(r"(?i)(password|passwd|secret|token|authorization|api_?key|signature|cookie|credential)")
REDACTED = "[redacted]"
_NO_SPACE = re.compile(r"\S*")  # a credential follows its scheme after whitespace


def mask_phone(match: re.Match) -> str:
    digits = match["digits"]
    return f"{match['plus']}{digits[:4]}****{digits[-3:]}"


def mask_text(text: str) -> str:
    """Phone numbers and email addresses masked; bearer and basic credentials removed."""
    if not text:
        return text
    # Each pattern only where its telltale character is: most values (paths, ids,
    # statuses) have none, and three regular expressions per value per line add up.
    if not _NO_SPACE.fullmatch(text):
        text = _BEARER.sub(lambda m: f"{m[1]} {REDACTED}", text)
    if "+" in text or "%2" in text:
        text = _PHONE.sub(mask_phone, text)
    if "@" in text:
        text = _EMAIL.sub(lambda m: f"{m['first']}***@{m['domain']}", text)
    return text


def _mask(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if depth > 4:
        return value
    if isinstance(value, dict):
        return {k: REDACTED if _is_secret(k) else _mask(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v, depth + 1) for v in value]
    return value


def _is_secret(key: Any) -> bool:
    return isinstance(key, str) and bool(_SECRET_KEYS.search(key))


def mask_sensitive(logger, method_name: str, event_dict: dict) -> dict:
    """A structlog processor: the last word before a line is rendered."""
    return {k: REDACTED if _is_secret(k) else _mask(v) for k, v in event_dict.items()}


def _drop_color_message(logger, method_name: str, event_dict: dict) -> dict:
    event_dict.pop("color_message", None)
    return event_dict


def _shared_processors() -> list:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_color_message,
    ]


def _json(event: dict, **kwargs) -> str:
    """One line of JSON, by orjson (several times the standard library's speed)."""
    try:
        return orjson.dumps(event, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits
        return json.dumps(event, default=str)


def logging_config(*, log_format: str, level: str) -> dict:
    """Django's LOGGING for `log_format` (json or console); configures structlog too."""
    if log_format not in {"json", "console"}:
        raise ValueError(f"LOG_FORMAT must be 'json' or 'console', not {log_format!r}")
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer = (
        structlog.processors.JSONRenderer(serializer=_json)
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False, sort_keys=False)
    )
    formatter = {
        "()": structlog.stdlib.ProcessorFormatter,
        # Plain logging calls: their `extra={...}` fields become keys of the line.
        "foreign_pre_chain": [*_shared_processors(), structlog.stdlib.ExtraAdder()],
        "processors": [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            mask_sensitive,
            renderer,
        ],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": formatter},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            "environ": {"level": "WARNING"},  # "no .env file" is the normal case
            # Our request line replaces Django's own "Not Found: /x" warnings.
            "django.request": {"level": "ERROR"},
            "django.server": {"level": "WARNING"},
            # The provider client logs each call itself; urllib3's lines would repeat it.
            "urllib3": {"level": "WARNING"},
            # One line per task comes from config/celery.py; Celery's received/succeeded
            # pair would triple it. Its failures and retries are warnings and still show.
            "celery.app.trace": {"level": "WARNING"},
            "celery.worker.strategy": {"level": "WARNING"},
        },
    }


def formatter_for(log_format: str) -> logging.Formatter:
    """A formatter like the configured one, for handlers added at run time (tests)."""
    config = logging_config(log_format=log_format, level="INFO")["formatters"]["structured"]
    config = dict(config)
    factory = config.pop("()")
    return factory(**config)
