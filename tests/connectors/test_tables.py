"""A connector's lookup tables (`tables.yaml`) keep codes exactly as written: shop and warehouse codes
such as 0123, NO or 1.10 are not numbers or booleans to an admin."""

from __future__ import annotations

from pathlib import Path

from gateway.connectors.base import _read_tables


def test_codes_in_a_tables_file_stay_the_text_written(tmp_path: Path) -> None:
    path = tmp_path / "tables.yaml"
    path.write_text("warehouses:\n  0123: 上海仓\n  NO: Oslo\n  1.10: v1.10\n  on: yes\n", encoding="utf-8")
    written = {"0123": "上海仓", "NO": "Oslo", "1.10": "v1.10", "on": "yes"}
    assert _read_tables(path) == {"warehouses": written}
