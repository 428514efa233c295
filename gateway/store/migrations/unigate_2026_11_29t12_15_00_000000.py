"""Indexes for paging by keyset: a scheme's runs newest first (scheme, id) and a run's records (run, id), so
a page costs the same whatever else the tables hold. Raw SQL: Piccolo columns index one column only."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Serial
from piccolo.table import Table

ID = "2026-11-29T12:15:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "indexes for paging scheme runs and run records"

INDEXES = {
    "unigate_scheme_run_scheme_id": "unigate_scheme_run (scheme, id)",
    "unigate_record_result_run_id": "unigate_record_result (run, id)",
}


class SchemeRun(Table, tablename="unigate_scheme_run", schema=None):
    id = Serial(primary_key=True)


async def create_indexes() -> None:
    for name, on in INDEXES.items():
        await SchemeRun.raw(f"CREATE INDEX IF NOT EXISTS {name} ON {on}")


async def drop_indexes() -> None:
    for name in INDEXES:
        await SchemeRun.raw(f"DROP INDEX IF EXISTS {name}")


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="unigate", description=DESCRIPTION)
    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
