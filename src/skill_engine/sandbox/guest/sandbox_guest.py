"""The code sandbox guest: CPython inside a Wasm component, one program per (fresh) instance.

Built with componentize-py (see skill_engine/sandbox/build.py); top-level code runs at build time and is
snapshotted, so the modules imported here cost nothing per call. The host gives the instance no files,
no network, no environment; it enforces time and memory from outside. Here we only shape the outcome:
captured stdout/stderr (capped), the value of the final expression or of `result`, or the error with its
traceback, as one JSON object.
"""

import ast
import builtins
import collections
import datetime
import decimal
import fractions
import functools
import io
import itertools
import json
import linecache
import math
import random
import re
import statistics
import string
import sys
import textwrap
import time
import traceback

from wit_world import exports
from wit_world.imports import host
from wit_world.types import Err

FILENAME = "<code>"
_PRELOADED = (collections, datetime, decimal, fractions, functools, itertools, math, random, re, statistics)
_PRELOADED += (string, textwrap)


class ToolError(Exception):
    """A tool called from the program reported an error."""


class Tools:
    """The namespace's tools as functions: `tools.add(a=1, b=2)`, `tools.call("name-with-dash", x=1)`."""

    def call(self, name, /, **arguments):
        try:
            text = host.call_tool(name, json.dumps(arguments))
        except Err as e:
            raise ToolError(f"Tool {name} failed: {e.value}") from None
        try:
            return json.loads(text)
        except ValueError:
            return text

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return functools.partial(self.call, name)


class _Capped(io.TextIOBase):
    """A text stream keeping the first `limit` characters; the rest is counted, not stored."""

    def __init__(self, limit):
        self.limit = limit
        self.parts = []
        self.size = 0
        self.truncated = False

    def writable(self):
        return True

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        room = self.limit - self.size
        if room > 0:
            kept = text[:room]
            self.parts.append(kept)
            self.size += len(kept)
        if len(text) > max(room, 0):
            self.truncated = True
        return len(text)

    def text(self):
        value = "".join(self.parts)
        if self.truncated:
            value += f"\n[output truncated after {self.limit} characters]"
        return value


def _chunked_sleep(seconds, _sleep=time.sleep):
    # A guest blocked in one long WASI sleep cannot be interrupted; short sleeps let the deadline hit.
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        _sleep(min(left, 0.02))


def _json_value(value):
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _error(error):
    frames = traceback.extract_tb(error.__traceback__)
    own = [frame for frame in frames if frame.filename == FILENAME]
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(own)] if own else []
    lines += traceback.format_exception_only(type(error), error)
    return {"type": type(error).__name__, "message": str(error), "traceback": "".join(lines)}


def execute(code, input_value, output_limit):
    stdout, stderr = _Capped(output_limit), _Capped(output_limit)
    outcome = {"stdout": "", "stderr": "", "result": None, "error": None}
    scope = {
        "__name__": "__main__",
        "__builtins__": builtins,
        "input": input_value,
        "tools": Tools(),
        "ToolError": ToolError,
    }
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = stdout, stderr
    time.sleep = _chunked_sleep
    try:
        linecache.cache[FILENAME] = (len(code), None, code.splitlines(True), FILENAME)
        tree = ast.parse(code, FILENAME, "exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        exec(compile(tree, FILENAME, "exec"), scope)
        if last is not None:
            outcome["result"] = _json_value(eval(compile(last, FILENAME, "eval"), scope))
        elif "result" in scope:
            outcome["result"] = _json_value(scope["result"])
    except BaseException as e:  # SystemExit and KeyboardInterrupt are the program's errors too
        outcome["error"] = _error(e)
    finally:
        sys.stdout, sys.stderr = saved
    outcome["stdout"] = stdout.text()
    outcome["stderr"] = stderr.text()
    return outcome


class Code(exports.Code):
    def run(self, code, input, options):
        limit = int(json.loads(options).get("output-limit", 65536))
        outcome = execute(code, json.loads(input), limit)
        try:
            return json.dumps(outcome)
        except (TypeError, ValueError) as e:
            outcome["result"] = None
            outcome["error"] = {"type": type(e).__name__, "message": str(e), "traceback": ""}
            return json.dumps(outcome)
