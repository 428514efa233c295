"""HTML form helpers: the form body type, errors keyed by field, and safe redirects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from litestar.enums import RequestEncodingType
from litestar.params import Body

from gateway.errors import UnigateError

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


def errors_of(error: UnigateError, fields: Mapping[str, str] | None = None) -> dict[str, str]:
    """{field: message} for a form, from a service error that names its field (else under "_").

    `fields` maps the service's field paths to the form's fields where they differ (`options.qps` is the
    form's `qps`); a path it lacks goes to its nearest parent it has (`options.breaker.failures` to the
    form's `options`), else keeps the service's name."""
    field = str(error.extra.get("field") or "_")
    path = field
    while fields and path not in fields and "." in path:
        path = path.rsplit(".", 1)[0]
    return {(fields or {}).get(path, field): error.detail}


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
