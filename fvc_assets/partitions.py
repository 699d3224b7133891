"""Partitions: one per video (dynamic, added by the inbox sensor or ``fvc run``)."""

import dagster as dg

VIDEOS_PARTITIONS_NAME = "videos"

videos_partitions = dg.DynamicPartitionsDefinition(name=VIDEOS_PARTITIONS_NAME)
