"""The run launcher's share of the cores for each run's math libraries."""

from fvc_resources.run_launcher import THREADS_TAG, PreloadedRunLauncher


def test_a_runs_threads_tag_overrides_the_instances_share_and_a_bad_tag_is_ignored():
    launcher = PreloadedRunLauncher(threads_per_run=1)
    assert launcher._threads() == 1
    assert launcher._threads({THREADS_TAG: "2"}) == 2
    for bad in ("0", "-1", "two", ""):
        assert launcher._threads({THREADS_TAG: bad}) == 1, bad
