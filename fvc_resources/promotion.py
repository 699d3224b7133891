"""How a candidate becomes the champion: the registered model, its alias and the gate's margin."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from fvc_resources.model_registry import CHAMPION, REGISTERED_MODEL, ModelRegistry
from fvc_resources.tracking import MlflowTracking


class PromotionPolicy(dg.ConfigurableResource):
    registered_model: str = Field(default=REGISTERED_MODEL, description="MLflow registered model of the bundles")
    alias: str = Field(default=CHAMPION, description="The alias `fvc serve` answers with")
    margin_over_control: float = Field(
        default=0.05, ge=0.0,
        description="ROC-AUC by which a candidate must beat the shuffled-label control to become champion")

    def registry(self, tracking: MlflowTracking) -> ModelRegistry:
        return ModelRegistry(tracking.uri, tracking.experiment_artifact_root(), self.registered_model, self.alias)
