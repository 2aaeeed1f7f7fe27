"""What the example upstream reports, as this service passes it on."""

from __future__ import annotations

from pydantic import BaseModel, Field


class UpstreamStatus(BaseModel):
    status: str = Field(max_length=100)
    """The upstream's own word for its state, e.g. `ok`."""
