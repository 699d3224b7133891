"""What the UI's asset page shows of a table asset: its columns and its row count.

A table's columns are declared once, on the asset definition (``declared_columns``): the UI shows
the definition's column schema for every partition, so the event log does not carry it again with
each materialisation (2-3 KB a table, once per video and step). A materialisation carries its own
column schema only when the table it wrote differs from the declared one, so the UI never shows
columns the file does not have.
"""

from __future__ import annotations

import dagster as dg
import polars as pl

COLUMN_SCHEMA = "dagster/column_schema"  # the keys Dagster's TableMetadataSet reads (not exported here)
ROW_COUNT = "dagster/row_count"


def column_schema(columns: pl.Schema) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, str(dtype)) for name, dtype in columns.items()])


def declared_columns(columns: pl.Schema) -> dict[str, object]:
    """Definition metadata (``@dg.asset(metadata=...)``) declaring the columns of the table an asset writes."""
    return {COLUMN_SCHEMA: dg.MetadataValue.table_schema(column_schema(columns))}


def table_metadata(table: pl.DataFrame, declared: pl.Schema | None = None) -> dict[str, object]:
    """``dagster/row_count`` of the table an asset wrote, and its ``dagster/column_schema`` unless the
    asset declares exactly these columns."""
    out: dict[str, object] = {ROW_COUNT: table.height}
    if declared is None or table.schema != declared:
        out[COLUMN_SCHEMA] = dg.MetadataValue.table_schema(column_schema(table.schema))
    return out
