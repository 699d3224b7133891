"""What every asset step uses, whatever its stage.

- ``per_video``: a step runs one video, or a batch of videos each recorded as its own partition.
- ``sole_writer``: one run at a time writes a partition; temp files of killed writers are swept.
- ``step_cost``: the step's wall, CPU and peak memory in its metadata (``cost/*``).
- ``table_metadata``: the columns and row count the UI shows for a table asset.
- ``upstream``: reading what an upstream partition wrote; data versions from tables and files.
"""
