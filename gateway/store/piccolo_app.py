"""The Piccolo app that owns unigate's tables and migrations."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from gateway.store.accounts import ACCOUNT_TABLES
from gateway.store.policy_tables import POLICY_TABLES
from gateway.store.scheme_tables import SCHEME_TABLES
from gateway.store.tables import TABLES
from gateway.store.usage_tables import USAGE_TABLES
from gateway.store.worker_tables import WORKER_TABLES

APP_CONFIG = AppConfig(
    app_name="unigate",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=[*TABLES, *ACCOUNT_TABLES, *SCHEME_TABLES, *POLICY_TABLES, *USAGE_TABLES, *WORKER_TABLES],
    migration_dependencies=[],
    commands=[],
)
