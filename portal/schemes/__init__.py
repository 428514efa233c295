"""The schemes section of the portal: admin pages (`PAGES`), management API (`API`), assets (`STATIC`)."""

from portal.schemes import texts  # noqa: F401 - registers the section's Chinese
from portal.schemes.api import ROUTES as API
from portal.schemes.pages import PAGES, STATIC

__all__ = ["API", "PAGES", "STATIC"]
