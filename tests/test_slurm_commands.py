"""The pure parts of the SLURM executor: requests from tags, the sbatch command, scontrol's answers.
No cluster needed."""

import subprocess
import sys
from pathlib import Path

import pytest

from fvc_resources.slurm import slurm_cli
from fvc_resources.slurm.job_state import Health, parse_show_job, slurm_notices
from fvc_resources.slurm.requests import SlurmRequest, SlurmRequestError, request_from_mapping, request_from_tags
from fvc_resources.slurm.sbatch import RUN_STEP_SCRIPT, job_name, log_path, parse_sbatch_output, sbatch_command

RUN_ID = "1a2b3c4d-5e6f-7081-92a3-b4c5d6e7f809"


def scontrol_line(job_id="42", state="RUNNING", reason="None", exit_code="0:0", command="/x/run_step.sh python"):
    return (
        f"JobId={job_id} JobName=fvc-1a2b3c4d-augmented_videos UserId=root(0) GroupId=root(0) "
        f"Priority=1 Nice=0 Account=(null) QOS=(null) JobState={state} Reason={reason} Dependency=(null) "
        f"Requeue=0 Restarts=0 BatchFlag=1 Reboot=0 ExitCode={exit_code} RunTime=00:01:27 TimeLimit=00:01:00 "
        f"SubmitTime=2026-01-01T10:00:00 StartTime=2026-01-01T10:00:01 EndTime=2026-01-01T10:01:28 "
        f"Partition=debug NodeList=node1 BatchHost=node1 NumNodes=1 Command={command} WorkDir=/work "
        f"StdErr=/logs/a.log StdIn=/dev/null StdOut=/logs/a.log Power=\n"
    )


def test_tags_override_executor_defaults_and_extra_args_add_up():
    defaults = request_from_mapping({"partition": "cpu", "mem": "4g", "cpus": 2, "extra_args": ["--nice=5"]})
    tags = {"slurm/partition": "gpu", "slurm/gres": "gpu:1", "slurm/time": "2:00:00",
            "slurm/extra_args": "--exclusive", "dagster/priority": "3"}
    request = defaults.merged(request_from_tags(tags, "scaled_videos"))
    assert request == SlurmRequest(partition="gpu", mem="4G", cpus=2, gres="gpu:1", time="2:00:00",
                                   extra_args=("--nice=5", "--exclusive"))
    assert request.sbatch_options() == [
        "--partition=gpu", "--cpus-per-task=2", "--mem=4G", "--time=2:00:00", "--gres=gpu:1",
        "--nice=5", "--exclusive",
    ]
    assert SlurmRequest().sbatch_options() == []


@pytest.mark.parametrize("tags, message", [
    ({"slurm/mem": "lots"}, "mem 'lots'"),
    ({"slurm/time": "1 hour"}, "time '1 hour'"),
    ({"slurm/cpus": "two"}, "cpus 'two'"),
    ({"slurm/cpus": "0"}, "at least 1"),
    ({"slurm/partition": "gpu; rm -rf /"}, "characters SLURM does not take"),
    ({"slurm/partiton": "gpu"}, "'slurm/partiton' is not known"),
    ({"slurm/extra_args": "-x evil"}, "must be one long option"),
    ({"slurm/gres": " "}, "empty value for gres"),
])
def test_bad_tags_are_refused_with_the_step_and_tag_named(tags, message):
    with pytest.raises(SlurmRequestError, match="my_step") as error:
        request_from_tags(tags, "my_step")
    assert message in str(error.value)


def test_job_names_and_log_paths_carry_run_step_and_attempt():
    assert job_name("fvc", RUN_ID, "augmented_videos", 0) == "fvc-1a2b3c4d-augmented_videos"
    assert job_name("fvc", RUN_ID, "fold_results[a|b]", 2) == "fvc-1a2b3c4d-fold_results_a_b-retry2"
    assert log_path(Path("/logs"), RUN_ID, "raw_videos", 0) == Path(f"/logs/{RUN_ID}/raw_videos.log")
    assert log_path(Path("/logs"), RUN_ID, "raw_videos", 1) == Path(f"/logs/{RUN_ID}/raw_videos.retry1.log")


def test_the_step_command_follows_the_fixed_script_word_by_word():
    step = ["/venv/bin/python", "-m", "dagster", "api", "execute_step", "--compressed-input-json", "eJx$(rm -rf /)"]
    request = SlurmRequest(partition="gpu", extra_args=("--exclusive",))
    command = sbatch_command(request, name="fvc-1a2b3c4d-x", log=Path("/logs/x.log"), workdir=Path("/work"),
                             command=step, comment=RUN_ID)
    script = command.index(str(RUN_STEP_SCRIPT))
    assert command[0] == "sbatch" and "--parsable" in command
    assert command[script + 1:] == step  # each word its own argument, never a shell line
    options = command[1:script]
    assert all(o.startswith("--") for o in options)
    assert {"--job-name=fvc-1a2b3c4d-x", "--output=/logs/x.log", "--error=/logs/x.log", "--chdir=/work",
            "--no-requeue", "--export=ALL", f"--comment={RUN_ID}", "--partition=gpu", "--exclusive"} <= set(options)
    assert "--wrap" not in " ".join(command)
    with pytest.raises(ValueError):
        sbatch_command(request, name="n", log=Path("l"), workdir=Path("w"), command=[])


def test_the_batch_script_runs_its_arguments_without_a_shell_reading_them(tmp_path):
    marker = tmp_path / "should-not-exist"
    done = subprocess.run([str(RUN_STEP_SCRIPT), "printf", "%s|", f"$(touch {marker})", "a b", "; echo no"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == f"$(touch {marker})|a b|; echo no|"
    assert not marker.exists()


def test_sbatch_answers():
    assert parse_sbatch_output("12345\n") == "12345"
    assert parse_sbatch_output("12345;cluster-a\n") == "12345"
    with pytest.raises(ValueError, match="did not answer with a job id"):
        parse_sbatch_output("sbatch: error: Batch job submission failed: Invalid partition name specified\n")


@pytest.mark.parametrize("state, health", [
    ("PENDING", Health.ACTIVE), ("RUNNING", Health.ACTIVE), ("COMPLETING", Health.ACTIVE),
    ("COMPLETED", Health.COMPLETED), ("FAILED", Health.FAILED), ("TIMEOUT", Health.FAILED),
    ("OUT_OF_MEMORY", Health.FAILED), ("NODE_FAIL", Health.FAILED), ("CANCELLED", Health.FAILED),
])
def test_job_states_map_to_step_health(state, health):
    assert parse_show_job("42", scontrol_line(state=state)).health == health


def test_scontrol_fields_come_from_before_the_command_line():
    # The step's own arguments (after Command=) may contain anything, even "JobState=".
    info = parse_show_job("42", scontrol_line(state="TIMEOUT", reason="TimeLimit", exit_code="0:15",
                                              command="/x/run_step.sh python JobState=COMPLETED Reason=None"))
    assert (info.state, info.reason, info.exit_code, info.node_list) == ("TIMEOUT", "TimeLimit", "0:15", "node1")
    assert info.describe() == ("SLURM job 42 TIMEOUT (TimeLimit, exit code 0:15, node node1): the job ran past "
                               "its time limit (--time / tag slurm/time) and SLURM killed it")
    assert parse_show_job("42", "slurm_load_jobs error: Invalid job id specified\n") is None
    assert parse_show_job("42", "") is None
    with pytest.raises(ValueError, match="unexpected scontrol output"):
        parse_show_job("42", scontrol_line(job_id="43"))


def test_one_listing_of_all_jobs_answers_for_each_job():
    from fvc_resources.slurm.job_state import parse_show_jobs

    listing = "\n".join([scontrol_line(job_id="41", state="RUNNING"),
                         scontrol_line(job_id="42", state="TIMEOUT", command="/x JobId=99 JobState=COMPLETED"),
                         "", "No jobs in the system"])
    jobs = parse_show_jobs(listing)
    assert {k: v.state for k, v in jobs.items()} == {"41": "RUNNING", "42": "TIMEOUT"}
    assert parse_show_jobs("No jobs in the system\n") == {}


def test_log_excerpt_keeps_slurms_kill_notice_above_a_long_traceback(tmp_path):
    notice = "slurmstepd-node1: error: *** JOB 42 ON node1 CANCELLED AT 2026-01-01T10:01:28 DUE TO TIME LIMIT ***"
    log = tmp_path / "step.log"
    log.write_text("fvc-slurm: job 42 on node1\n" + notice + "\n" + "".join(f"traceback line {i}\n" for i in range(100)))
    assert slurm_notices(log.read_text()) == [notice]
    excerpt = slurm_cli.log_excerpt(log, lines=5).splitlines()
    assert excerpt == [notice, *(f"traceback line {i}" for i in range(95, 100))]
    assert slurm_cli.log_excerpt(tmp_path / "missing.log").startswith("(no log at")


def test_pure_modules_do_not_import_dagster():
    code = ("import sys; import fvc_resources.slurm.requests, fvc_resources.slurm.sbatch, "
            "fvc_resources.slurm.job_state, fvc_resources.slurm.slurm_cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'dagster'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_deployment_chooses_the_executor_and_run_config_can_read_the_environment(monkeypatch):
    import dagster as dg

    from fvc_assets.deployment import executor_backend
    from fvc_resources.slurm.executor import fvc_executor_with_default, settings_from_config

    monkeypatch.delenv("FVC_EXECUTOR", raising=False)
    assert executor_backend() == "in_process"  # one machine: all of a run's steps in its worker
    monkeypatch.setenv("FVC_EXECUTOR", "SLURM")
    assert executor_backend() == "slurm"
    executor = fvc_executor_with_default(executor_backend())
    assert executor.config_schema.default_value == {"slurm": {}}
    with pytest.raises(ValueError, match="expected one of multiprocess, in_process, slurm"):
        fvc_executor_with_default("k8s")

    @dg.op
    def noop() -> None: ...

    @dg.job(executor_def=executor)
    def one_step():
        noop()

    # Values from the environment are Dagster config ({env: NAME}), resolved when the run starts.
    monkeypatch.setenv("FVC_SLURM_PARTITION", "gpu")
    monkeypatch.setenv("FVC_SLURM_LOGS_DIR", "/shared/logs")
    config = dg.validate_run_config(one_step, {"execution": {"config": {"slurm": {
        "mem": "8G", "partition": {"env": "FVC_SLURM_PARTITION"}, "logs_dir": {"env": "FVC_SLURM_LOGS_DIR"}}}}})
    settings = settings_from_config(config["execution"]["fvc"]["slurm"])
    assert settings.defaults == SlurmRequest(partition="gpu", mem="8G")
    assert settings.logs_dir == Path("/shared/logs")
    # Nothing is read from the environment that the config does not name.
    assert settings_from_config({"mem": "8G"}).defaults == SlurmRequest(mem="8G")
