"""JSON from clients, parsed with limits: the one parser every entry point uses (the ingest and
push APIs, the WebSocket consumers).

Python's json module accepts what OneMap cannot store or compute with, and fails on the rest in
ways a caller does not expect from "malformed JSON":
- deep nesting raises RecursionError (100,000 `[` took a 500), and a tree a few hundred levels
  deep that does parse breaks json.dumps and jsonb later;
- a 401-digit integer parses, then raises OverflowError wherever it meets float();
- `1e400` parses as inf, `NaN` and `Infinity` as themselves: jsonb and JSON answers refuse them;
- `\\u0000` and a lone surrogate (`\\ud800`) parse into strings that PostgreSQL (text, jsonb) and
  UTF-8 refuse.
Each is a JsonInvalid (a ValueError) here, with a machine-readable reason, before any of it
reaches a handler.

Cheap on the hot path (one fix per request): numbers are checked by parse hooks as the C scanner
meets them; the tree is walked only when the text could break a rule (more brackets than the depth
allowed, a \\u0000 or a surrogate escape), so a small fix is never walked."""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Deep enough for any document OneMap takes (a push payload is the deepest: a task with nested
# details); a fix batch is 3 levels.
MAX_DEPTH = 32
# Characters of one number literal: an epoch in ms is 13 digits, a coordinate with all its float
# digits about 20; a 64-character number is no measurement.
MAX_NUMBER_CHARS = 64
# What can make a string PostgreSQL or UTF-8 refuses: the escapes of NUL and of any surrogate (a
# proper pair becomes one astral character and passes the check), and a raw surrogate (in text a
# Python caller passes; UTF-8 bytes cannot hold one). Searched for only when `\u` or non-ASCII
# text is there at all: the regular expression alone cost ~2 ms on a 500-fix batch.
SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
RAW_SURROGATE = re.compile(r"[\ud800-\udfff]")
BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")


class JsonInvalid(ValueError):
    """reason: malformed_json, too_deep, number_out_of_range or invalid_string."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise JsonInvalid("number_out_of_range", f"a number of {len(text)} characters (at most {MAX_NUMBER_CHARS})")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise JsonInvalid("number_out_of_range", f"a number of {len(text)} characters (at most {MAX_NUMBER_CHARS})")
    value = float(text)
    if not math.isfinite(value):
        raise JsonInvalid("number_out_of_range", f"{text[:40]} is beyond a double")
    return value


def _constant(name: str) -> Any:
    raise JsonInvalid("number_out_of_range", f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


STRICT = json.JSONDecoder(parse_int=_int, parse_float=_float, parse_constant=_constant)
# Fix ingest: NaN, Infinity and a float beyond a double (inf) are one fix's error
# (invalid_coordinates; the batch's other fixes are stored), as realtime/README.md documents, and
# parse_fix refuses non-finite values field by field. Floats parse in C here (a hook per number
# was most of the parser's cost on a 500-fix batch); an integer literal stays limited.
NON_FINITE_ALLOWED = json.JSONDecoder(parse_int=_int)


def loads(data: bytes | bytearray | str, *, max_depth: int = MAX_DEPTH, allow_nan: bool = False) -> Any:
    """The parsed document, or JsonInvalid. Bytes must be UTF-8 (RFC 8259 section 8.1).
    allow_nan: NaN, Infinity and numbers beyond a double parse as non-finite floats, for callers
    that check every number themselves."""
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as error:
            raise JsonInvalid("malformed_json", f"the body is not UTF-8: {error.reason} at byte {error.start}") from None
        raw_surrogates = False  # strict UTF-8 decoding refuses them
    else:
        text = data
        raw_surrogates = not text.isascii() and RAW_SURROGATE.search(text) is not None
    try:
        value = (NON_FINITE_ALLOWED if allow_nan else STRICT).decode(text)
    except JsonInvalid:
        raise
    except RecursionError:
        raise JsonInvalid("too_deep", f"JSON nested deeper than {max_depth} levels") from None
    except ValueError as error:  # json.JSONDecodeError, and int()'s digit limit
        raise JsonInvalid("malformed_json", f"malformed JSON: {str(error)[:200]}") from None
    if text.count("[") + text.count("{") > max_depth:
        _parsed_depth(value, max_depth)
    if raw_surrogates or ("\\u" in text and SUSPECT_ESCAPE.search(text)):
        check_strings(value)
    return value


def check_tree(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """Depth and strings of a document built in Python (a push made by a command, say)."""
    check_depth(value, max_depth)
    check_strings(value)


def check_depth(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """Level by level over the containers only (iteratively: a deep tree must not recurse here)."""
    level = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if depth > max_depth:
            raise JsonInvalid("too_deep", f"JSON nested deeper than {max_depth} levels")
        level = [c for item in level for c in (item.values() if isinstance(item, dict) else item)
                 if isinstance(c, dict | list)]


JSON_CONTAINERS = (dict, list)


def _parsed_depth(value: Any, max_depth: int) -> None:
    """check_depth for what json made (exact dict and list): ~5x faster, ~0.4 ms for 500 fixes."""
    level = [value] if type(value) in JSON_CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > max_depth:
            raise JsonInvalid("too_deep", f"JSON nested deeper than {max_depth} levels")
        level = [c for item in level for c in (item.values() if type(item) is dict else item)
                 if type(c) in JSON_CONTAINERS]


def check_strings(value: Any) -> None:
    """No NUL and no lone surrogate in any key or string value."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if BAD_CHARACTER.search(item):
                raise JsonInvalid("invalid_string", "a string holds \\u0000 or a lone surrogate (\\ud800-\\udfff)")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
