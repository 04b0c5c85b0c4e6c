"""Re-serializes large JSON (skill inputs and outputs) in a helper process, off the event loop.

Every `/run` input and output is parsed and written back compactly, as PhariaEngine does. For tens of MiB
that takes hundreds of milliseconds of C code that holds the GIL the whole time, so a worker thread would
stall the event loop just the same; a helper process does not (the bytes cross a pipe, which releases the
GIL). Bodies up to `LARGE` stay in-process, where a helper round trip would cost more than it saves. The
helper is one spawned process, started at the first large body and reused.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import re
import threading
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import orjson

LARGE = 1024 * 1024

_pool: ProcessPoolExecutor | None = None
_lock = threading.Lock()


class JsonProblem(Exception):
    """The bytes are not JSON; `kind` is `syntax` (serde-style text) or `unicode`."""

    def __init__(self, kind: str, text: str) -> None:
        super().__init__(text)
        self.kind = kind
        self.text = text


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
"""What `json.dumps` with these arguments builds at every call; the output is the same."""


def dumps(value: Any) -> bytes:
    return _ENCODER.encode(value).encode()


_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def compact(raw: bytes, strict: bool = False) -> bytes | tuple[str, str]:
    """`raw` re-serialized compactly, or (kind, text) when it is not JSON (picklable either way).

    `strict` refuses NaN and Infinity while parsing (request bodies); outputs keep json's default.
    orjson parses first (several times faster than `json`; the values are the same): it accepts less
    than `json` (no NaN, no lone surrogates, UTF-8 only), and whatever it refuses goes through `json`, so
    results and error texts stay `json`'s. Integers beyond 64 bits would become floats in orjson: a body
    with 19 digits in a row anywhere is left to `json`. The output is always written by `json`.
    """
    if _LONG_DIGITS.search(raw) is None:
        try:
            return dumps(orjson.loads(raw))
        except orjson.JSONDecodeError:
            pass
    try:
        value = json.loads(raw, parse_constant=_reject_constant) if strict else json.loads(raw)
    except json.JSONDecodeError as e:
        return ("syntax", f"{e.msg} at line {e.lineno} column {e.colno}")
    except UnicodeDecodeError as e:
        return ("unicode", str(e))
    except ValueError as e:
        return ("constant", str(e))
    return dumps(value)


def _helper() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        return _pool


async def compact_json(raw: bytes, strict: bool = False) -> bytes:
    """Compact JSON bytes of `raw`; JsonProblem if it is not JSON. Large bodies go to the helper."""
    if len(raw) <= LARGE:
        result = compact(raw, strict)
    else:
        result = await asyncio.get_running_loop().run_in_executor(_helper(), compact, raw, strict)
    if isinstance(result, tuple):
        raise JsonProblem(*result)
    return result


def shutdown() -> None:
    global _pool
    with _lock:
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
            _pool = None
