"""What every asset step uses, whatever its stage.

- ``sole_writer``: one run at a time writes a partition; temp files of killed writers are swept.
- ``step_cost``: the step's wall, CPU and peak memory in its metadata (``cost/*``).
- ``table_metadata``: the columns and row count the UI shows for a table asset.
- ``upstream``: reading what an upstream partition wrote; data versions from tables and files.
"""
