"""``fvc run`` as a client of Dagster's run queue: register, plan, submit, wait, report."""
