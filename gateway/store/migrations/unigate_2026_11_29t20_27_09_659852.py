from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Integer
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-29T20:27:09:659852"
VERSION = "1.38.0"
DESCRIPTION = "usage_daily.admitted: calls a quota counted, to seed its counters"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="unigate", description=DESCRIPTION)

    manager.add_column(
        table_class_name="UsageDaily",
        tablename="unigate_usage_daily",
        column_name="admitted",
        db_column_name="admitted",
        column_class_name="Integer",
        column_class=Integer,
        params={
            "default": 0,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager
