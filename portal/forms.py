"""HTML form helpers: the form body type, errors keyed by field, and safe redirects."""

from __future__ import annotations

from typing import Annotated, Any

from litestar.enums import RequestEncodingType
from litestar.params import Body

from gateway.errors import UnigateError

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


def errors_of(error: UnigateError) -> dict[str, str]:
    """{field: message} for a form, from a service error that names its field (else under "_")."""
    field = str(error.extra.get("field") or "_")
    return {field: error.detail}


def safe_next(target: str | None, default: str) -> str:
    """Only redirect within this site: a path, never `//host` or a full URL."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def text(form: dict[str, Any], name: str) -> str:
    value = form.get(name, "")
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value).strip()
