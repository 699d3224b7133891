"""``@reports_cost``: a step's wall seconds, CPU seconds and peak RSS in its materialisation metadata,
so an operator sizes ``slurm/mem`` and ``slurm/time`` from the UI. Put it under ``@dg.asset``.

The step's metadata (its own and the cost) goes to the materialisation only, through
``context.add_asset_metadata``: metadata returned on a ``MaterializeResult`` is stored twice in the
event log, on the step-output event and on the materialisation, and the UI shows the latter."""

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
        context.add_asset_metadata({**(result.metadata or {}), **cost.as_metadata()}, asset_key=result.asset_key)
        return dg.MaterializeResult(asset_key=result.asset_key, check_results=result.check_results,
                                    data_version=result.data_version, tags=result.tags)

    return wrapper
