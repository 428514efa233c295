"""All configuration, read from the environment once into one typed object."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from cryptography.fernet import Fernet

from gateway.store.crypto import split_keys

_N = TypeVar("_N", int, float)


class SettingsError(ValueError):
    """A setting that cannot be used; its message starts with the variable's name."""


# Piccolo finds its engine through this module path; set before any table is used.
os.environ.setdefault("PICCOLO_CONF", "gateway.store.piccolo_conf")


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str = "sqlite:///var/unigate.db"
    redis_url: str | None = None
    # How long one Redis call (and opening a connection to Redis) may take before it counts as Redis away:
    # a frozen or partitioned Redis then costs a request this, not a hang (policies/fallback.py).
    redis_timeout_seconds: float = 0.5
    secret_key: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_level: str = "INFO"
    # How long `unigate serve` waits for its database to answer and be migrated before giving up.
    start_timeout_seconds: float = 30.0
    # How long a stopping node waits for each worker to finish what it has in flight before killing it.
    stop_timeout_seconds: float = 25.0
    config_poll_seconds: float = 1.0
    upstream_timeout_seconds: float = 10.0
    upstream_retries: int = 3
    var_dir: str = "var"
    # Integration schemes (gateway/schemes): queue bound in batches, run lease, batch claim, worker tasks.
    scheme_queue_bound: int = 20
    scheme_lease_seconds: float = 15.0
    scheme_claim_idle_seconds: float = 30.0
    scheme_poll_seconds: float = 0.5
    worker_concurrency: int = 4
    # Portal: new developer accounts wait for an admin; the language of pages for whoever has not chosen;
    # the Secure flag on the session and CSRF cookies (set it whenever the portal is served over HTTPS).
    signup_approval: bool = False
    default_locale: str = "zh"
    cookie_secure: bool = False
    # Admission (policies/admission.py): requests in flight per node, how many may wait, for how long.
    admission_max_in_flight: int = 256
    admission_queue: int = 1024
    admission_max_wait_seconds: float = 2.0
    # Response cache (policies/cache.py): seconds per unified API; an API not named is not cached.
    cache_ttl: dict[str, float] = {}
    cache_max_entries: int = 10_000
    # Usage metering (policies/metering.py): how often usage is written, how many samples a consumer keeps.
    metering_flush_seconds: float = 2.0
    request_samples_per_consumer: int = 200
    usage_timezone: str = "Asia/Shanghai"
    policies_enabled: bool = True  # UNIGATE_POLICIES=off keeps only Authenticate (the bench's baseline)
    # GET /v1/stockouts and /v1/orders answered past Litestar's handler layer (gateway/unified/fast.py).
    fast_reads: bool = True
    # Identity and limits (policies/oauth.py, quota.py, body_limit.py, ipfilter.py): JWT issuer and
    # lifetime, the timezone calendar quotas count in, the default body size cap, and the proxies whose
    # X-Forwarded-For / X-Forwarded-Proto are believed (CIDRs; none by default).
    token_issuer: str = "unigate"
    token_ttl_seconds: int = 900
    quota_timezone: str = "Asia/Shanghai"
    max_body_bytes: int = 1_048_576
    trusted_proxies: tuple[str, ...] = ()

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgres://", "postgresql://"))

    @property
    def sqlite_path(self) -> str:
        return self.database_url.removeprefix("sqlite:///")


def _secret_key(env: dict[str, str], var_dir: str) -> str:
    """UNIGATE_SECRET_KEY (one Fernet key, or several separated by commas while rotating: the new one first),
    else a key kept in var/secret.key (for a one-node demo only)."""
    if value := env.get("UNIGATE_SECRET_KEY"):
        keys = split_keys(value)  # as the Vault reads it
        for number, key in enumerate(keys, 1):
            try:
                Fernet(key.encode())  # fail at start-up, not at the first encrypted read
            except ValueError:
                # Which one, by its place: never the value, which may be a real key with a typo.
                which = f"key {number} of {len(keys)}" if len(keys) > 1 else "the key"
                raise SettingsError(
                    f"UNIGATE_SECRET_KEY: {which} is not a Fernet key (32 url-safe base64-encoded bytes); "
                    'make one with `python -c "from cryptography.fernet import Fernet; '
                    'print(Fernet.generate_key().decode())"`'
                ) from None
        return ",".join(keys)
    path = Path(var_dir) / "secret.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    # Owner-only from its first byte (not written, then narrowed). O_EXCL: the file is made by one process
    # only; every other (later, or starting at the same moment) reads what that one wrote.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(100):  # the other process made it a moment ago: its key follows
            if existing := path.read_text().strip():
                return existing
            time.sleep(0.01)
        raise SettingsError(f"{path} is empty: remove it, or set UNIGATE_SECRET_KEY") from None
    with os.fdopen(fd, "w") as file:
        file.write(key)
    return key


def environ() -> dict[str, str]:
    """The process environment, for `${VAR}` secret references in declarative config files."""
    return dict(os.environ)


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    var_dir = env.get("UNIGATE_VAR_DIR", "var")
    return Settings(
        database_url=_database_url(env.get("DATABASE_URL", f"sqlite:///{var_dir}/unigate.db")),
        redis_url=env.get("REDIS_URL") or None,
        redis_timeout_seconds=_number(env, "UNIGATE_REDIS_TIMEOUT", 0.5, 0.01),
        secret_key=_secret_key(env, var_dir),
        host=env.get("UNIGATE_HOST", "127.0.0.1"),
        port=_number(env, "UNIGATE_PORT", 8000, 1, 65535),
        workers=_number(env, "UNIGATE_WORKERS", 1, 1),
        log_level=_log_level(env.get("UNIGATE_LOG_LEVEL", "INFO")),
        start_timeout_seconds=_number(env, "UNIGATE_START_TIMEOUT", 30.0, 0.0),
        stop_timeout_seconds=_number(env, "UNIGATE_STOP_TIMEOUT", 25.0, 1.0),
        config_poll_seconds=_number(env, "UNIGATE_CONFIG_POLL_SECONDS", 1.0),
        upstream_timeout_seconds=_number(env, "UNIGATE_UPSTREAM_TIMEOUT", 10.0),
        upstream_retries=_number(env, "UNIGATE_UPSTREAM_RETRIES", 3),
        var_dir=var_dir,
        scheme_queue_bound=_number(env, "UNIGATE_SCHEME_QUEUE_BOUND", 20),
        scheme_lease_seconds=_number(env, "UNIGATE_SCHEME_LEASE_SECONDS", 15.0),
        scheme_claim_idle_seconds=_number(env, "UNIGATE_SCHEME_CLAIM_IDLE_SECONDS", 30.0),
        scheme_poll_seconds=_number(env, "UNIGATE_SCHEME_POLL_SECONDS", 0.5),
        worker_concurrency=_number(env, "UNIGATE_WORKER_CONCURRENCY", 4),
        signup_approval=env.get("UNIGATE_SIGNUP_APPROVAL", "0").lower() in ("1", "true", "yes"),
        default_locale=env.get("UNIGATE_DEFAULT_LOCALE", "zh"),
        cookie_secure=env.get("UNIGATE_COOKIE_SECURE", "0").lower() in ("1", "true", "yes"),
        admission_max_in_flight=_number(env, "UNIGATE_ADMISSION_MAX_IN_FLIGHT", 256),
        admission_queue=_number(env, "UNIGATE_ADMISSION_QUEUE", 1024),
        admission_max_wait_seconds=_number(env, "UNIGATE_ADMISSION_MAX_WAIT", 2.0),
        cache_ttl=_per_api_seconds("UNIGATE_CACHE_TTL", env.get("UNIGATE_CACHE_TTL", "")),
        cache_max_entries=_number(env, "UNIGATE_CACHE_MAX_ENTRIES", 10_000),
        metering_flush_seconds=_number(env, "UNIGATE_METERING_FLUSH_SECONDS", 2.0),
        request_samples_per_consumer=_number(env, "UNIGATE_REQUEST_SAMPLES", 200),
        usage_timezone=env.get("UNIGATE_USAGE_TIMEZONE", "Asia/Shanghai"),
        policies_enabled=env.get("UNIGATE_POLICIES", "on").lower() not in ("off", "0", "false", "no"),
        fast_reads=env.get("UNIGATE_FAST_READS", "on").lower() not in ("off", "0", "false", "no"),
        token_issuer=env.get("UNIGATE_TOKEN_ISSUER", "unigate"),
        token_ttl_seconds=_number(env, "UNIGATE_TOKEN_TTL", 900),
        quota_timezone=_timezone(
            "UNIGATE_QUOTA_TIMEZONE", env.get("UNIGATE_QUOTA_TIMEZONE", "Asia/Shanghai")
        ),
        max_body_bytes=_number(env, "UNIGATE_MAX_BODY_BYTES", 1_048_576),
        trusted_proxies=tuple(
            part.strip() for part in env.get("UNIGATE_TRUSTED_PROXIES", "").split(",") if part.strip()
        ),
    )


def _number(env: dict[str, str], name: str, default: _N, low: _N | None = None, high: _N | None = None) -> _N:
    """A numeric variable, of the default's type, within [low, high]; anything else fails at start-up,
    naming the variable."""
    text = env.get(name)
    if text is None or not text.strip():
        return default
    kind = "a whole number" if isinstance(default, int) else "a number"
    try:
        value = type(default)(text)
    except ValueError:
        raise SettingsError(f"{name}: expected {kind}, got {text!r}") from None
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise SettingsError(f"{name}: expected {kind} {bounds}, got {text!r}")
    return value


def _database_url(url: str) -> str:
    if not url.startswith(("sqlite:///", "postgres://", "postgresql://")):
        raise SettingsError(
            f"DATABASE_URL: expected sqlite:///path or postgres://user:password@host:port/db, got "
            f"{url.split('://', 1)[0]}://…"
        )
    return url


def _log_level(value: str) -> str:
    """A level name Python's logging knows, checked here: every process would fail on it at start."""
    level = value.strip().upper() or "INFO"
    if level == "WARN":
        return "WARNING"
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise SettingsError(
            f"UNIGATE_LOG_LEVEL: expected DEBUG, INFO, WARNING, ERROR or CRITICAL, got {value!r}"
        )
    return level


def _timezone(name: str, value: str) -> str:
    """An IANA timezone name, checked at start-up so a typo fails loudly rather than at midnight."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"{name}: unknown timezone {value!r} (expected an IANA name like Asia/Shanghai)"
        ) from None
    return value


def _per_api_seconds(name: str, text: str) -> dict[str, float]:
    """`stockouts=30,logistics=300` -> {"stockouts": 30.0, "logistics": 300.0}; malformed fails at start."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        api, sep, seconds = part.partition("=")
        try:
            value = float(seconds)
        except ValueError:
            value = -1.0
        if not sep or not api.strip() or value < 0:
            raise SettingsError(f"{name}: expected api=seconds[,api=seconds...], got {part!r}")
        out[api.strip()] = value
    return out
