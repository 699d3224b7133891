"""Declared table columns: on the definitions, equal to what pandera validates, repeated in a
materialisation only when the written table differs."""

import polars as pl
import pytest

from fvc_assets.augment.columns import CLIP_COLUMNS
from fvc_assets.augment.schema import ClipTable
from fvc_assets.features.columns import HANDCRAFTED_COLUMNS, SCALED_FEATURE_COLUMNS
from fvc_assets.features.schema import HandcraftedFeatureTable, ScaledFeatureTable
from fvc_assets.scale.columns import SCALED_CLIP_COLUMNS
from fvc_assets.scale.schema import ScaledClipTable
from fvc_assets.steps.table_metadata import COLUMN_SCHEMA, ROW_COUNT, declared_columns, table_metadata


@pytest.mark.parametrize("model, declared", [(ClipTable, CLIP_COLUMNS), (HandcraftedFeatureTable, HANDCRAFTED_COLUMNS),
                                             (ScaledFeatureTable, SCALED_FEATURE_COLUMNS),
                                             (ScaledClipTable, SCALED_CLIP_COLUMNS)])
def test_declared_columns_are_the_validated_ones(model, declared):
    validated = {name: column.dtype.type for name, column in model.to_schema().columns.items()}
    assert validated == dict(declared)


def test_a_table_as_declared_carries_its_row_count_only():
    table = pl.DataFrame({"clip_id": ["a", "b"], "frames": [3, 4]})
    declared = pl.Schema({"clip_id": pl.String, "frames": pl.Int64})
    assert table_metadata(table, declared) == {ROW_COUNT: 2}
    schema = declared_columns(declared)[COLUMN_SCHEMA].schema
    assert [(c.name, c.type) for c in schema.columns] == [("clip_id", "String"), ("frames", "Int64")]


@pytest.mark.parametrize("table", [
    pl.DataFrame({"clip_id": ["a"], "frames": [3.5]}),  # another type
    pl.DataFrame({"frames": [3], "clip_id": ["a"]}),  # another order
    pl.DataFrame({"clip_id": ["a"]}),  # a column missing
])
def test_a_table_unlike_its_declaration_shows_its_own_columns(table):
    declared = pl.Schema({"clip_id": pl.String, "frames": pl.Int64})
    metadata = table_metadata(table, declared)
    assert [c.name for c in metadata[COLUMN_SCHEMA].schema.columns] == table.columns
    assert metadata[ROW_COUNT] == 1
