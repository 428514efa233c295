"""The schemes section of the portal: admin pages (`PAGES`), management API (`API`), assets (`STATIC`)."""

from portal.schemes.api import ROUTES as API
from portal.schemes.pages import PAGES, STATIC

__all__ = ["API", "PAGES", "STATIC"]
