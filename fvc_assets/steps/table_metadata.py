"""What the UI's asset page shows of a table asset: its columns and its row count."""

from __future__ import annotations

import dagster as dg
import polars as pl


def table_metadata(table: pl.DataFrame) -> dict[str, object]:
    """``dagster/column_schema`` and ``dagster/row_count`` of the table an asset wrote."""
    schema = dg.TableSchema(columns=[dg.TableColumn(name, str(dtype)) for name, dtype in table.schema.items()])
    # The keys Dagster's TableMetadataSet reads (not exported by this Dagster version).
    return {"dagster/column_schema": dg.MetadataValue.table_schema(schema), "dagster/row_count": table.height}
