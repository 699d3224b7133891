"""``@reports_cost``: a step's wall seconds, CPU seconds and peak RSS in its materialisation metadata,
so an operator sizes ``slurm/mem`` and ``slurm/time`` from the UI. Put it under ``@dg.asset``."""

import functools

import dagster as dg
from fvc_core.step_cost import measure_cost


def reports_cost(fn):
    @functools.wraps(fn)  # Dagster reads the parameters (resources, config) through __wrapped__
    def wrapper(context: dg.AssetExecutionContext, *args, **kwargs):
        with measure_cost() as cost:
            result = fn(context, *args, **kwargs)
        if not isinstance(result, dg.MaterializeResult):
            return result
        figures = cost.as_metadata()
        context.log.info("step cost: " + ", ".join(f"{k.removeprefix('cost/')} {v}" for k, v in figures.items()))
        return dg.MaterializeResult(asset_key=result.asset_key, metadata={**(result.metadata or {}), **figures},
                                    check_results=result.check_results, data_version=result.data_version,
                                    tags=result.tags)

    return wrapper
