#!/bin/bash
# The batch script of every step job: a fixed file that runs its arguments as one
# command. The step command (`python -m dagster api execute_step ...`) arrives as
# sbatch arguments, so no user string ever becomes shell code.
echo "fvc-slurm: job ${SLURM_JOB_ID:-?} on $(hostname) at $(date '+%Y-%m-%dT%H:%M:%S%z'), cwd $(pwd)"
exec "$@"
