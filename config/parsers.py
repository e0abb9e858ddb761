"""The JSON parser for every API: DRF's (by orjson when the body is valid), plus limits
that keep bad input a 4xx.

Python's json module recurses per nesting level, so a body of `[[[[...` would end in a
RecursionError (a 500); strings carrying NUL or lone surrogates parse fine but cannot
be stored in PostgreSQL text or encoded as UTF-8. All three are refused here, with the
path of the offending value.
"""

import io

import orjson
from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError

MAX_DEPTH = 16


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            # orjson first: several times the standard library's speed. It refuses what
            # the checks below refuse too (lone surrogates), but with less to say about
            # where: any body it refuses is parsed again the slow way for the message.
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = self._parse_slowly(raw, media_type, parser_context)
        _check(data)
        return data

    def _parse_slowly(self, raw: bytes, media_type, parser_context):
        try:
            return super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels") from None


def _check(data) -> None:
    stack = [(data, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, str):
            _check_text(value, path)
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, path)
                stack.append((item, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))


def _check_text(value: str, path: str) -> None:
    if "\x00" in value:
        raise ValidationError({path or "body": ["must not contain NUL characters"]})
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError({path or "body": ["must be valid Unicode (no lone surrogates)"]}) from None
