"""The ``fvc`` command line's parsing."""

import pytest

from fvc_assets.cli import attach_dash_values, build_parser


def parse(*argv: str):
    return build_parser().parse_args(attach_dash_values(list(argv)))


def test_partition_keys_may_begin_with_a_dash():
    args = parse("run", "--partition", "-SXat-rG3O4", "--partition", "plain", "--partition=--x")
    assert args.partition == ["-SXat-rG3O4", "plain", "--x"]
    with pytest.raises(SystemExit):  # what argparse alone does with such a key
        build_parser().parse_args(["run", "--partition", "-SXat-rG3O4"])


def test_values_after_a_double_dash_are_left_alone():
    args = parse("predict", "--model", "xgboost", "--", "--partition", "-clip.mp4")
    assert args.videos == ["--partition", "-clip.mp4"] and args.model == "xgboost"


def test_fvc_predict_shows_videos_scored_failures_and_eta_on_a_terminal():
    import io
    from types import SimpleNamespace

    from fvc_assets.cli import predict_progress

    stream = io.StringIO()
    with predict_progress(3, stream=stream, enabled=True) as scored:
        scored(SimpleNamespace(probability_fake=0.9))
        scored(SimpleNamespace(probability_fake=None))  # an unreadable video
    line = stream.getvalue().split("\r")[-1]
    assert "fvc predict" in line and "2/3" in line and "1 failed" in line and "<" in line  # elapsed<remaining
    quiet = io.StringIO()
    with predict_progress(3, stream=quiet) as scored:  # not a terminal: no progress line
        scored(SimpleNamespace(probability_fake=0.1))
    assert quiet.getvalue() == ""
