"""``fvc run``'s incremental planner against the planner that asks about every partition: the same
partitions and reasons on an instance with fresh, missing, failed, partly run, stale and wiped
partitions, and the second plan asks only about what changed."""

from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget

from benchmarks.orchestration import make_tiny_corpus
from fvc_assets.augment.assets import augmented_videos
from fvc_assets.definitions import defs
from fvc_assets.ingest.registration import load_registration, register_new_videos
from fvc_assets.jobs import TRAIN_JOB, VIDEO_PIPELINE_JOB
from fvc_assets.launch import incremental_plan
from fvc_assets.launch.incremental_plan import is_incremental, plan_partitions, state_key
from fvc_assets.launch.plan import out_of_date
from fvc_assets.partitions import VIDEOS_PARTITIONS_NAME
from fvc_resources.storage import StorageResource

REPO_ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    """Six registered videos: two fresh, one missing, one failed (not a video), one with raw_videos only, one stale."""
    data = tmp_path / "data"
    make_tiny_corpus(data / "inbox", 5)
    (data / "inbox" / "broken.mp4").write_bytes(b"not a video at all" * 64)
    registered, _ = register_new_videos(data / "inbox", data / "registry")
    monkeypatch.setenv("FVC_DATA_DIR", str(data))
    monkeypatch.setenv("FVC_EXECUTOR", "in_process")
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        keys = sorted(r.key for r in registered)
        instance.add_dynamic_partitions(VIDEOS_PARTITIONS_NAME, keys)
        yield instance, keys, data


def run(instance, key, **kwargs):
    return defs.resolve_job_def(VIDEO_PIPELINE_JOB).execute_in_process(
        instance=instance, partition_key=key, raise_on_error=False, **kwargs)


def both_plans(instance, keys):
    target = WorkspaceFileTarget(paths=[str(REPO_ROOT / "workspace.yaml")])
    with WorkspaceProcessContext(instance, target, version="") as process:
        with process.create_request_context() as workspace:
            old = out_of_date(instance, workspace, defs, VIDEO_PIPELINE_JOB, keys)
        with process.create_request_context() as workspace:
            new = plan_partitions(instance, workspace, defs, VIDEO_PIPELINE_JOB, keys)
    return old, new


def record_asked(monkeypatch) -> tuple[list[list[str]], list[list[str]]]:
    """The partitions each plan looks at again (read in bulk) and those it asks the resolver about."""
    looked, asked = [], []
    bulk, resolver = incremental_plan.bulk_verdicts, incremental_plan.out_of_date
    monkeypatch.setattr(incremental_plan, "bulk_verdicts",
                        lambda *args, **kwargs: looked.append(list(args[3])) or bulk(*args, **kwargs))
    monkeypatch.setattr(incremental_plan, "out_of_date",
                        lambda *args, **kwargs: asked.append(list(args[4])) or resolver(*args, **kwargs))
    return looked, asked


def test_the_incremental_planner_agrees_and_asks_only_about_what_changed(corpus, monkeypatch):
    instance, keys, data = corpus
    assert is_incremental(defs, VIDEO_PIPELINE_JOB) and not is_incremental(defs, TRAIN_JOB)
    broken = next(k for k in keys if k.startswith("broken"))
    fresh, missing, partial, stale, other = (k for k in keys if k != broken)
    for key in (fresh, stale, other):
        assert run(instance, key).success
    assert not run(instance, broken).success
    assert run(instance, partial, asset_selection=[dg.AssetKey("raw_videos")]).success
    # A new clip table (another seed) for one video: its features and scaled clips are stale.
    assert run(instance, stale, asset_selection=[dg.AssetKey("augmented_videos")],
               run_config={"ops": {"augmented_videos": {"config": {"global_seed": 1}}}}).success

    looked, asked = record_asked(monkeypatch)
    # Every run here ended within the slack kept for clocks that disagree; without it, only runs that
    # ended after a plan began count as news to the next.
    monkeypatch.setattr(incremental_plan, "RUN_CLOCK_SLACK", timedelta(0))
    old, new = both_plans(instance, keys)
    assert new == old
    assert set(old) == {missing, broken, partial, stale}, old
    assert old[missing] == "raw_videos missing" and "failed" in old[broken]
    assert old[partial] == "augmented_videos missing"
    assert old[stale].startswith(("handcrafted_features stale", "scaled_videos stale")), old[stale]
    # Read in bulk, every verdict but the stale one is decided by the records (missing, failed, nothing
    # read has changed); the stale one (a parent materialised since) is left to the resolver's wording.
    assert sorted(looked[-1]) == sorted(keys) and asked == [[stale]]
    assert instance.run_storage.get_cursor_values({state_key(VIDEO_PIPELINE_JOB)})

    # Bring two up to date: the next plan looks at them and the ones still out of date, not the rest.
    assert run(instance, stale).success and run(instance, missing).success
    looked.clear(), asked.clear()
    old, new = both_plans(instance, keys)
    assert new == old and set(old) == {broken, partial}, old
    assert set(looked[-1]) == {stale, missing, broken, partial} and asked == []

    # Nothing happened since: only the partitions out of date are looked at again.
    looked.clear()
    old, new = both_plans(instance, keys)
    assert new == old and sorted(looked[-1]) == sorted([broken, partial])

    # News about videos called up to date: a new clip table for one, materialised outside the job (as the
    # UI's Materialize button does: only its event says so), and a failed run of the job for another (its
    # file changed since it was registered).
    assert dg.materialize([augmented_videos], instance=instance, partition_key=fresh,
                          resources={"storage": StorageResource(data_dir=str(data))},
                          run_config={"ops": {"augmented_videos": {"config": {"global_seed": 1}}}}).success
    with open(load_registration(data / "registry", other).path, "ab") as file:
        file.write(b"appended")
    assert not run(instance, other).success
    old, new = both_plans(instance, keys)
    assert new == old and set(old) == {broken, partial, fresh, other}, old
    assert "stale" in old[fresh] and "failed" in old[other]

    # A wipe writes no event: the kept verdicts of videos up to date do not hide it.
    instance.wipe_assets([dg.AssetKey("scaled_features")])
    old, new = both_plans(instance, keys)
    assert new == old and old[stale] == old[missing] == "scaled_features missing", old


def test_a_changed_code_version_plans_from_scratch_and_reads_the_verdict_in_bulk(corpus, monkeypatch):
    instance, keys, data = corpus
    first, second = [k for k in keys if not k.startswith("broken")][:2]
    assert run(instance, first).success and run(instance, second).success
    old, new = both_plans(instance, keys)
    assert new == old and first not in new
    kept = incremental_plan._code_versions
    monkeypatch.setattr(incremental_plan, "_code_versions",
                        lambda d, k: {**kept(d, k), "scaled_videos": "a later version"})
    looked, asked = record_asked(monkeypatch)
    _, new = both_plans(instance, keys)
    assert first in looked[-1], "a new code version: the kept verdicts are not used"

    # scaled_videos of `second` as an earlier code version wrote it: stale by its code version alone,
    # which the records say without asking the resolver.
    record = instance.fetch_materializations(dg.AssetRecordsFilter(
        asset_key=dg.AssetKey("scaled_videos"), asset_partitions=[second]), limit=1).records[0]
    earlier = record.asset_materialization
    instance.report_runless_asset_event(dg.AssetMaterialization(
        asset_key=earlier.asset_key, partition=second, metadata=earlier.metadata,
        tags={**earlier.tags, "dagster/code_version": "0"}))
    asked.clear()
    old, new = both_plans(instance, keys)
    assert new == old and old[second] == "scaled_videos stale: has a new code version", old
    assert asked == [] or second not in asked[-1]


def test_a_plan_of_some_videos_keeps_the_verdicts_of_the_last_full_plan(corpus):
    instance, keys, _ = corpus
    first = next(k for k in keys if not k.startswith("broken"))
    assert run(instance, first).success
    both_plans(instance, keys)
    kept = instance.run_storage.get_cursor_values({state_key(VIDEO_PIPELINE_JOB)})
    old, new = both_plans(instance, [first])
    assert new == old == {}
    assert instance.run_storage.get_cursor_values({state_key(VIDEO_PIPELINE_JOB)}) == kept
