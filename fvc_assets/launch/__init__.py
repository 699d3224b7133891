"""How the ``fvc`` commands start Dagster: the environment every command sets up (``environment``), and
``fvc run`` as a client of Dagster's run queue: register, plan, submit, wait, report."""
