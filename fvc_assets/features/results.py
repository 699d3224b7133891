"""What both feature stages return to Dagster: a validated table and its two checks."""

import polars as pl

import dagster as dg
from fvc_assets.features.plausible import implausible_values
from fvc_assets.partitions import videos_partitions


def validated_table(model, rows: list[dict]) -> pl.DataFrame:
    """``rows`` as a frame the pandera ``model`` accepts (raises otherwise); empty keeps the columns."""
    if not rows:
        return model.validate(pl.DataFrame(schema=list(model.to_schema().columns)))
    return model.validate(pl.DataFrame(rows, schema_overrides={"frames_sampled": pl.Int64}))


def feature_check_specs(asset: str, complete: str, sane: str, complete_description: str) -> list[dg.AssetCheckSpec]:
    """The completeness and sanity checks of a per-video feature asset (blocking, per partition)."""
    return [
        dg.AssetCheckSpec(complete, partitions_def=videos_partitions, asset=asset, blocking=True,
                          description=complete_description),
        dg.AssetCheckSpec(sane, partitions_def=videos_partitions, asset=asset, blocking=True,
                          description="No NaN or infinity; every value within its plausible range."),
    ]


def feature_checks(
    complete: str, sane: str, expected: int, table: pl.DataFrame, missing: dict[str, str], ranges
) -> list[dg.AssetCheckResult]:
    """Completeness (one row per clip, names the missing) and sanity (finite, in range, names the failing)."""
    problems = implausible_values(table, ranges) if table.height else {}
    return [
        dg.AssetCheckResult(
            check_name=complete,
            passed=not missing and table.height == expected,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"clips": expected, "rows": table.height, "missing": dg.MetadataValue.json(missing)},
        ),
        dg.AssetCheckResult(
            check_name=sane,
            passed=not problems,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"failing_clips": dg.MetadataValue.json(problems)},
        ),
    ]
