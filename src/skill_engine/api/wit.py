"""`GET /skill.wit`: the `pharia:skill@0.3` WIT world, verbatim (engine-spec §2.10).

The file is the one the `pharia-skill` SDK builds 0.3 skills against; it ships as package data.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response


@cache
def skill_wit() -> bytes:
    return resources.files("skill_engine").joinpath("wit/skill@0.3/skill.wit").read_bytes()


async def serve_skill_wit(request: Request) -> Response:
    return Response(skill_wit(), media_type="text/plain; charset=utf-8")
