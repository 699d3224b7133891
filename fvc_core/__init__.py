"""Pure helpers that both layers use (no dagster): video keys, frame sampling counts, training settings.

Layers point one way: ``fvc_assets`` (Dagster) -> ``fvc_resources`` -> ``fvc_core``.
"""
