"""The Swagger UI page, with the service's name escaped.

FastAPI's own page puts the title into `<title>` as it is; a name such as `Tom & Jerry's <Shop>`
would break the page's HTML.
"""

from __future__ import annotations

import html

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    """Interactive API documentation."""
    title = html.escape(f"{request.app.title} - Swagger UI")
    return get_swagger_ui_html(openapi_url=request.app.openapi_url, title=title)
