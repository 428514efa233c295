"""One tree of errors, each mapping to one RFC 9457 problem `code` and HTTP status."""

from __future__ import annotations

import os
import re
from typing import Any, ClassVar


class UnigateError(Exception):
    """Base of every error a caller can see; rendered as application/problem+json."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra
        self.headers: dict[str, str] = {}

    def problem(self) -> dict[str, Any]:
        return {
            "type": f"https://unigate.dev/problems/{self.code.replace('_', '-')}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            **self.extra,
        }


class InvalidParameter(UnigateError):
    status, code, title = 400, "invalid_parameter", "Invalid parameter"

    def __init__(self, field: str, detail: str, **extra: Any) -> None:
        super().__init__(detail, field=field, **extra)
        self.field = field


class Unauthorized(UnigateError):
    status, code, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str, *, invalid_token: bool = False, **extra: Any) -> None:
        """`invalid_token`: a key or token was sent, and is not (or no longer) good: RFC 6750 3.1 says so
        in the challenge, so a client knows to get a new one rather than to add one."""
        super().__init__(detail, **extra)
        error = ', error="invalid_token"' if invalid_token else ""
        self.headers["WWW-Authenticate"] = f'Bearer realm="unigate"{error}'


class Forbidden(UnigateError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(UnigateError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(UnigateError):
    status, code, title = 409, "conflict", "Conflict"


class IdempotencyConflict(Conflict):
    status, code, title = 422, "idempotency_key_reused", "Idempotency key reused with a different request"


class UnsupportedOperation(UnigateError):
    status, code, title = 501, "unsupported_operation", "Operation not supported by this connection"


class ConnectionNotFound(UnigateError):
    status, code, title = 400, "unknown_connection", "Unknown connection"


class UpstreamError(UnigateError):
    """Something went wrong between us and a backend."""

    status, code, title = 502, "upstream_unavailable", "Upstream unavailable"

    def __init__(self, detail: str, *, system: str, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.system = system


class UpstreamTimeout(UpstreamError):
    status, code, title = 504, "upstream_timeout", "Upstream timed out"


class VendorError(UpstreamError):
    """The backend answered, in its own envelope, that it refused the call."""

    status, code, title = 502, "vendor_error", "The backend system refused the request"

    def __init__(self, *, system: str, vendor_code: str, message: str, **extra: Any) -> None:
        super().__init__(
            f"{system} answered {vendor_code}: {message}",
            system=system,
            vendor={"system": system, "code": vendor_code, "message": message},
            **extra,
        )
        self.vendor_code = vendor_code
        self.vendor_message = message


class VendorRateLimited(VendorError):
    """The backend said we call it too often; retried with backoff before it reaches a caller."""

    title = "The backend system is rate limiting us"


class VendorNotFound(VendorError):
    status, code, title = 404, "not_found", "Not found in the backend system"


# A caller's X-Request-ID is kept when it is an id: 1-128 letters, digits and `._:-` (UUIDs, ULIDs, trace
# ids). Anything else (8 KB of text, markup, spaces) would be echoed into headers, bodies and every log
# line of the request, so the request gets an id of our own instead.
_CALLER_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


# Where the code of a problem answered for a request is noted (scope["state"]), for its access log line.
PROBLEM_CODE = "problem_code"


def request_id_from(header: str | None) -> str:
    """The caller's X-Request-ID if it is a plain id, else a fresh one (128 random bits as hex)."""
    if header is not None and _CALLER_ID.fullmatch(header):
        return header
    return os.urandom(16).hex()


def problem_json(error: UnigateError, request_id: str | None) -> bytes:
    """The RFC 9457 body of an error, with the request id a caller quotes to support."""
    import msgspec

    from policies.pii import mask_text  # imported here: policies import this module

    body = error.problem()
    # A vendor may quote a receiver's phone or ID card number back at us: never pass it on.
    body["detail"] = mask_text(str(body["detail"]))
    if isinstance(vendor := body.get("vendor"), dict) and vendor.get("message"):
        body["vendor"] = {**vendor, "message": mask_text(str(vendor["message"]))}
    if request_id:
        body["request_id"] = request_id
    return msgspec.json.encode(body)


PROBLEM_JSON = "application/problem+json"


def retry_after_seconds(seconds: float) -> int:
    """The whole seconds a Retry-After says for `seconds` (and a refusal's words with it): never 0, which
    would invite an immediate retry storm."""
    return max(1, round(seconds + 0.499))


def _retry_after(error: UnigateError, seconds: float) -> None:
    error.headers["Retry-After"] = str(retry_after_seconds(seconds))


class Overloaded(UnigateError):
    """This node is at its in-flight bound and the request waited as long as it may (admission)."""

    status, code, title = 503, "overloaded", "The gateway is overloaded"

    def __init__(self, detail: str, *, retry_after: float, **extra: Any) -> None:
        super().__init__(detail, **extra)
        _retry_after(self, retry_after)


class CircuitOpen(UpstreamError):
    """The connection's circuit breaker is open: answered at once, without calling the backend."""

    status, code, title = 503, "upstream_unavailable", "Upstream unavailable"

    def __init__(self, detail: str, *, system: str, retry_after: float, **extra: Any) -> None:
        super().__init__(detail, system=system, **extra)
        _retry_after(self, retry_after)


class UpstreamBusy(UpstreamError):
    """The backend's own QPS or concurrency cap leaves no room within the call's time budget."""

    status, code, title = 503, "upstream_busy", "The backend's own limit is used up"

    def __init__(self, detail: str, *, system: str, retry_after: float, **extra: Any) -> None:
        super().__init__(detail, system=system, **extra)
        _retry_after(self, retry_after)


# Policies (issue 4, part 1): identity, subscriptions, limits, network rules.


class InsufficientScope(Forbidden):
    """The access token's scopes do not cover the operation called."""

    code, title = "insufficient_scope", "Insufficient scope"

    def __init__(self, detail: str, *, scope: str, **extra: Any) -> None:
        super().__init__(detail, required_scope=scope, **extra)
        self.headers["WWW-Authenticate"] = (
            f'Bearer realm="unigate", error="insufficient_scope", scope="{scope}"'
        )


class NotSubscribed(Forbidden):
    """The application has no active subscription to the API it called."""

    code, title = "not_subscribed", "Not subscribed to this API"


class NotInPlan(Forbidden):
    """The plan of the subscription does not include the operation called."""

    code, title = "not_in_plan", "Operation not included in the plan"


class IpForbidden(Forbidden):
    code, title = "ip_forbidden", "Calls from this address are not allowed"


class CorsRejected(Forbidden):
    code, title = "cors_rejected", "Cross-origin request not allowed"


class PayloadTooLarge(UnigateError):
    status, code, title = 413, "payload_too_large", "Request body too large"


class RateLimited(UnigateError):
    """Too many calls in a rate-limit window; `Retry-After` says when to try again."""

    status, code, title = 429, "rate_limited", "Rate limit exceeded"

    def __init__(self, detail: str, *, retry_after: float, **extra: Any) -> None:
        super().__init__(detail, **extra)
        _retry_after(self, retry_after)


class QuotaExceeded(RateLimited):
    """The day's or month's quota is used up; `Retry-After` points at the start of the next period."""

    code, title = "quota_exceeded", "Quota exceeded"


class OAuthError(UnigateError):
    """A token endpoint refusal: problem+json that also carries RFC 6749's `error` members."""

    status, code, title = 400, "invalid_request", "Invalid token request"

    def problem(self) -> dict[str, Any]:
        return {**super().problem(), "error": self.code, "error_description": self.detail}


class InvalidClient(OAuthError):
    status, code, title = 401, "invalid_client", "Client authentication failed"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers["WWW-Authenticate"] = 'Basic realm="unigate"'


class InvalidScope(OAuthError):
    code, title = "invalid_scope", "Invalid scope"


class UnsupportedGrantType(OAuthError):
    code, title = "unsupported_grant_type", "Unsupported grant type"


class UnauthorizedClient(OAuthError):
    code, title = "unauthorized_client", "Client not allowed this grant"


class InvalidMapping(InvalidParameter):
    """A mapping spec with problems; `issues` lists every one, each with the path it is at."""

    code, title = "invalid_mapping", "Invalid mapping"

    def __init__(self, field: str, issues: list[dict[str, str]]) -> None:
        lines = "; ".join(f"{i['path']}: {i['message']}" if i["path"] else i["message"] for i in issues[:5])
        super().__init__(field, f"the mapping has {len(issues)} problem(s): {lines}", issues=issues)


class ConnectionNotGranted(Forbidden):
    """The application may not use the connection it named (or that its default names): the connection is
    neither open nor granted to it. An unknown name gets the same answer, so names are not revealed."""

    code, title = "connection_not_granted", "Connection not granted to this application"


class SecretKeyMismatch(UnigateError):
    """UNIGATE_SECRET_KEY is not the key what the database holds was sealed with (gateway/store/crypto.py)."""

    status, code, title = 503, "secret_key_mismatch", "UNIGATE_SECRET_KEY does not match the database"


class CredentialsUnreadable(UpstreamError):
    """A connection's stored credentials do not open with this node's UNIGATE_SECRET_KEY: it is not called."""

    status, code, title = 503, "credentials_unreadable", "The connection's credentials cannot be read"
