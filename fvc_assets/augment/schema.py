"""The clip table: one row per clip, the lineage from every clip back to its source video."""

import pandera.polars as pa

from fvc_assets.augment.transforms import AUGMENTATIONS


class ClipTable(pa.DataFrameModel):
    clip_id: str = pa.Field(unique=True)
    video_id: str
    augmentation_idx: int = pa.Field(ge=-1, le=len(AUGMENTATIONS) - 1)
    augmentation: str = pa.Field(isin=["original", *AUGMENTATIONS])
    params: str
    label: str
    dup_group: str
    frames: int = pa.Field(gt=0)
    fps: float = pa.Field(gt=0)
    width: int = pa.Field(gt=0)
    height: int = pa.Field(gt=0)
    path: str

    class Config:
        strict = True
