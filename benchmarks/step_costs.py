"""What each step cost in the runs an instance holds: the largest peak RSS, wall and CPU seconds per asset.

    DAGSTER_HOME=dagster_home .venv/bin/python -m benchmarks.step_costs

Reads the ``cost/*`` metadata every per-video and training step writes (``fvc_assets.steps.step_cost``)
from every materialisation the instance holds: what to ask ``slurm/mem`` and
``slurm/time`` for. Ratios: each asset's largest peak RSS against the 400 MB a per-video step
should need at most.
"""

from __future__ import annotations

import statistics

import dagster as dg

from benchmarks._measure import print_table

ASSETS = ("raw_videos", "augmented_videos", "handcrafted_features", "scaled_videos", "scaled_features",
          "fold_results", "ensemble_results")
PER_VIDEO_BUDGET_MB = 400
PAGE = 10_000


def costs(instance: dg.DagsterInstance, asset: str) -> list[dict[str, float]]:
    out, cursor = [], None
    while True:  # Dagster hands out at most 10,000 records a call
        page = instance.fetch_materializations(dg.AssetKey(asset), limit=PAGE, cursor=cursor)
        for record in page.records:
            metadata = record.asset_materialization.metadata
            if "cost/wall_s" in metadata:
                out.append({k.removeprefix("cost/"): metadata[k].value for k in metadata if k.startswith("cost/")})
        if not page.has_more:
            return out
        cursor = page.cursor


def main() -> None:
    instance = dg.DagsterInstance.get()
    rows = []
    for asset in ASSETS:
        found = costs(instance, asset)
        if not found:
            continue
        peak = max(c.get("peak_rss_mb", 0.0) for c in found)
        rows.append([asset, len(found), f"{peak:.0f}", f"{peak / PER_VIDEO_BUDGET_MB:.2f}x",
                     f"{max(c['wall_s'] for c in found):.1f}", f"{statistics.median(c['wall_s'] for c in found):.1f}",
                     f"{max(c['cpu_s'] for c in found):.1f}"])
    print_table(["asset", "steps", "max peak RSS MB", "vs 400 MB", "max wall s", "median wall s", "max CPU s"], rows)


if __name__ == "__main__":
    main()
