"""All configuration, read from the environment once into one typed object."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
from cryptography.fernet import Fernet

# Piccolo finds its engine through this module path; set before any table is used.
os.environ.setdefault("PICCOLO_CONF", "gateway.store.piccolo_conf")


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str = "sqlite:///var/unigate.db"
    redis_url: str | None = None
    secret_key: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_level: str = "INFO"
    config_poll_seconds: float = 1.0
    upstream_timeout_seconds: float = 10.0
    upstream_retries: int = 3
    var_dir: str = "var"

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgres://", "postgresql://"))

    @property
    def sqlite_path(self) -> str:
        return self.database_url.removeprefix("sqlite:///")


def _secret_key(env: dict[str, str], var_dir: str) -> str:
    """UNIGATE_SECRET_KEY, else a key kept in var/secret.key (for a one-node demo only)."""
    if key := env.get("UNIGATE_SECRET_KEY"):
        Fernet(key.encode())  # fail at start-up, not at the first encrypted read
        return key
    path = Path(var_dir) / "secret.key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    path.write_text(key)
    path.chmod(0o600)
    return key


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    var_dir = env.get("UNIGATE_VAR_DIR", "var")
    return Settings(
        database_url=env.get("DATABASE_URL", f"sqlite:///{var_dir}/unigate.db"),
        redis_url=env.get("REDIS_URL") or None,
        secret_key=_secret_key(env, var_dir),
        host=env.get("UNIGATE_HOST", "127.0.0.1"),
        port=int(env.get("UNIGATE_PORT", "8000")),
        workers=int(env.get("UNIGATE_WORKERS", "1")),
        log_level=env.get("UNIGATE_LOG_LEVEL", "INFO").upper(),
        config_poll_seconds=float(env.get("UNIGATE_CONFIG_POLL_SECONDS", "1.0")),
        upstream_timeout_seconds=float(env.get("UNIGATE_UPSTREAM_TIMEOUT", "10")),
        upstream_retries=int(env.get("UNIGATE_UPSTREAM_RETRIES", "3")),
        var_dir=var_dir,
    )
