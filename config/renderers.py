"""The JSON renderer for every API: DRF's output, written by orjson.

DRF's renderer runs the standard library's encoder with a Python `default` for dates,
decimals and lazy strings; orjson writes the same compact UTF-8 several times faster
(the cost ledger, docs/performance.md). What DRF renders differently is kept: dates go
through DRF's encoder (its `Z` for UTC), U+2028/U+2029 are escaped, and an indent asked
for in the Accept header, or a value orjson refuses (an integer beyond 64 bits), falls
back to DRF's own renderer. A test holds both renderers to the same bytes.
"""

import orjson
from rest_framework import renderers

_SEPARATORS = ("\u2028".encode(), "\u2029".encode())


class JSONRenderer(renderers.JSONRenderer):
    _default = renderers.JSONRenderer.encoder_class().default

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if self.get_indent(accepted_media_type, renderer_context or {}) is not None:
            return super().render(data, accepted_media_type, renderer_context)
        try:
            body = orjson.dumps(data, default=self._default, option=orjson.OPT_PASSTHROUGH_DATETIME)
        except orjson.JSONEncodeError:
            return super().render(data, accepted_media_type, renderer_context)
        if _SEPARATORS[0] in body or _SEPARATORS[1] in body:
            body = body.replace(_SEPARATORS[0], b"\\u2028").replace(_SEPARATORS[1], b"\\u2029")
        return body
