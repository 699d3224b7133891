"""Run Dagster steps as SLURM jobs.

- ``executor``: ``slurm_executor`` (a ``StepDelegatingExecutor``) and
  ``fvc_executor_with_default``: in_process, multiprocess or slurm, a default the
  definitions choose and run config overrides.
- ``step_handler``: one ``sbatch`` job per step; health from ``scontrol``; ``scancel``.
- ``requests``, ``sbatch``, ``job_state``, ``step_logs``, ``slurm_cli``: small pure
  modules (no dagster) that build commands and read SLURM's answers.

This package file imports nothing, so the pure modules load without dagster.
"""
