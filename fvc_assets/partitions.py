"""Partitions: one per video (dynamic, added by the inbox sensor or ``fvc run``), and model x fold.

The model dimension is the nine default models, plus any named in
``FVC_EXTRA_MODELS`` (e.g. ``r2plus1d,i3d``); ``FVC_MODELS`` replaces the
whole list. It is read when the definitions load, so set it for the UI,
the daemon and ``fvc run`` alike.
"""

import os

import dagster as dg
from fvc_assets.train.folds import N_FOLDS
from fvc_assets.train.models.registry import DEFAULT_MODELS, model_names_from

VIDEOS_PARTITIONS_NAME = "videos"

videos_partitions = dg.DynamicPartitionsDefinition(name=VIDEOS_PARTITIONS_NAME)


def configured_models() -> tuple[str, ...]:
    models = model_names_from(os.environ.get("FVC_MODELS")) or DEFAULT_MODELS
    extra = model_names_from(os.environ.get("FVC_EXTRA_MODELS"))
    return tuple(dict.fromkeys([*models, *extra]))


MODELS = configured_models()
FOLDS = tuple(str(k) for k in range(N_FOLDS))

model_fold_partitions = dg.MultiPartitionsDefinition(
    {"model": dg.StaticPartitionsDefinition(list(MODELS)), "fold": dg.StaticPartitionsDefinition(list(FOLDS))}
)
