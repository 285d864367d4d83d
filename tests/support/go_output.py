"""Reading what the go command prints."""

from __future__ import annotations

import json


def decode_json_stream(text: str) -> list[dict]:
    """The objects of `go list -m -json` / `go mod download -json` output, which for several
    arguments is a stream of JSON objects one after another, not one JSON document."""
    decoder = json.JSONDecoder()
    out, pos = [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return out
        obj, pos = decoder.raw_decode(text, pos)
        out.append(obj)
