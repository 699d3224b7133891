"""``@sole_writer``: one run at a time writes an asset partition; temp files of killed writers are swept.

Put it under ``@dg.asset``. It takes the lock ``<data root>/locks/<asset>/<partition>.lock``
before the body runs (a second run of the same partition fails at once, naming the
run that holds it), then removes temp files a killed earlier writer left beside the
asset's outputs, which is safe only under that lock.
"""

import contextlib
import functools
import os
import re
import socket
from collections.abc import Callable

import dagster as dg
from fvc_resources.atomic import remove_stale_temps
from fvc_resources.locks import OutputBusy, exclusive_writer
from fvc_resources.storage import StorageResource

Outputs = Callable[[StorageResource, dg.AssetExecutionContext], list]


def lock_name(partition: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", partition)


def sole_writer(outputs: Outputs):
    """``outputs(storage, context)``: the files and folders the asset writes for the context's partition."""

    def decorate(fn):
        @functools.wraps(fn)  # Dagster reads the parameters (resources, config) through __wrapped__
        def wrapper(context: dg.AssetExecutionContext, *args, **kwargs):
            storage: StorageResource = kwargs["storage"]
            asset = context.asset_key.to_user_string()
            partition = context.partition_key if context.has_partition_key else "all"
            lock = storage.root / "locks" / asset / f"{lock_name(partition)}.lock"
            holder = f"run {context.run.run_id}, pid {os.getpid()} on {socket.gethostname()}"
            with contextlib.ExitStack() as stack:
                try:
                    stack.enter_context(exclusive_writer(lock, holder, f"{asset} partition {partition!r}"))
                except OutputBusy as error:
                    raise dg.Failure(description=str(error), metadata={"lock": dg.MetadataValue.path(str(lock))}) from error
                removed = remove_stale_temps(*outputs(storage, context))
                if removed:
                    context.log.info(f"removed {len(removed)} temp file(s) left by an interrupted writer")
                return fn(context, *args, **kwargs)

        return wrapper

    return decorate
