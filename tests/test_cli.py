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
