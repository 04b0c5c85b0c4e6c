"""The Skill Console: a browser UI at `/ui` over the engine's own API (docs/console.md).

`routes.py` serves the static pages (`static/`, no build step, no external assets) and the few read-only
JSON routes under `/v1/console/` that only the console needs (catalogue state, executions, health); the
console otherwise uses the public API like any client, with the same bearer token.
"""
