"""Partitions: one per video (dynamic, added by the inbox sensor or ``fvc run``), base model x fold, and fold.

The models are the nine defaults, plus any named in ``FVC_EXTRA_MODELS``
(e.g. ``r2plus1d,i3d``); ``FVC_MODELS`` replaces the whole list (read by
``fvc_assets.deployment`` when the definitions load, so set it for the UI, the
daemon and ``fvc run`` alike). ``fold_results`` is partitioned by the base models x fold;
the ensemble, which reads their scores, is its own asset, partitioned by fold.
"""

import dagster as dg
from fvc_assets.deployment import model_lists
from fvc_assets.train.folds import N_FOLDS
from fvc_assets.train.models.registry import DEFAULT_MODELS, base_models, model_names_from

VIDEOS_PARTITIONS_NAME = "videos"

videos_partitions = dg.DynamicPartitionsDefinition(name=VIDEOS_PARTITIONS_NAME)


def configured_models() -> tuple[str, ...]:
    replacing, adding = model_lists()
    models = model_names_from(replacing) or DEFAULT_MODELS
    extra = model_names_from(adding)
    return tuple(dict.fromkeys([*models, *extra]))


MODELS = configured_models()
BASE_MODELS = base_models(MODELS)
ENSEMBLE = "ensemble"
FOLDS = tuple(str(k) for k in range(N_FOLDS))

fold_partitions = dg.StaticPartitionsDefinition(list(FOLDS))


def model_fold_partitions_of(models: tuple[str, ...]) -> dg.MultiPartitionsDefinition:
    """``fold_results``' partitions for a model list: each base model x fold (the ensemble is its own asset)."""
    return dg.MultiPartitionsDefinition(
        {"model": dg.StaticPartitionsDefinition(list(base_models(models))), "fold": fold_partitions}
    )


model_fold_partitions = model_fold_partitions_of(MODELS)
