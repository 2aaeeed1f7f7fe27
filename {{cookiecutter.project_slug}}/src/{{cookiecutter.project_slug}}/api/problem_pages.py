"""A short page per problem type, so every `type` URI in a problem response resolves.

RFC 9457 suggests that a problem type's URI lead to documentation a human can read. With
`PROBLEM_TYPE_BASE_URL` pointing elsewhere (your documentation site), these pages still answer.
"""

from __future__ import annotations

import html

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from {{ cookiecutter.project_slug }}.core.errors import NotFoundError, problem_types

router = APIRouter(prefix="/problems", include_in_schema=False)


@router.get("/{code}", response_class=HTMLResponse)
async def problem_type_page(code: str) -> HTMLResponse:
    """What one problem type means."""
    known = problem_types()
    if code not in known:
        raise NotFoundError(f"no problem type named {code!r}")
    status, title = known[code]
    page = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p>Answered with HTTP status {status}. The response body is an RFC 9457 problem: "
        "<code>detail</code> says what went wrong with this request, <code>request_id</code> "
        "identifies it in the service's logs.</p>"
    )
    return HTMLResponse(page)
