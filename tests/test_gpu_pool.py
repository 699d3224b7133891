"""The `gpu` pool is held only while a step puts work on a GPU, through the instance's own pool slots."""

import threading
import time

import dagster as dg

from fvc_resources.gpu_pool import GPU_POOL, holding_gpu_pool


def test_no_asset_declares_a_static_pool():
    """CPU work (letterbox, feature models, CPU training) must never wait for a GPU slot."""
    from fvc_assets.definitions import defs

    for key in defs.resolve_asset_graph().get_all_asset_keys():
        assert defs.resolve_assets_def(key).op.pool is None, key


def test_a_second_gpu_step_waits_for_the_slot_and_gets_it_when_freed():
    with dg.instance_for_test() as instance:
        instance.event_log_storage.set_concurrency_slots(GPU_POOL, 1)
        order = []
        first_holds = threading.Event()
        release_first = threading.Event()

        def first():
            with holding_gpu_pool(instance, "run-a", "scaled_videos"):
                order.append("a in")
                first_holds.set()
                release_first.wait(10)
                order.append("a out")

        def second():
            first_holds.wait(10)
            with holding_gpu_pool(instance, "run-b", "fold_results", log=order.append):
                order.append("b in")

        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for t in threads:
            t.start()
        first_holds.wait(10)
        time.sleep(1.5)  # the second step is waiting, not running
        assert "b in" not in order
        assert instance.event_log_storage.get_concurrency_info(GPU_POOL).active_slot_count == 1
        release_first.set()
        for t in threads:
            t.join(30)
        assert order.index("a out") < order.index("b in")
        assert any("waiting for a slot of the 'gpu' pool" in line for line in order)
        assert instance.event_log_storage.get_concurrency_info(GPU_POOL).active_slot_count == 0
