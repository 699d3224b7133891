import pytest

from fvc_core.keys import MAX_KEY_LENGTH, is_safe_key, sanitize_video_id, unique_key


@pytest.mark.parametrize(
    "stem, expected",
    [
        ("Y7MJlmbnLQA", "Y7MJlmbnLQA"),
        ("-Wgsj0ne_9M", "-Wgsj0ne_9M"),  # YouTube ids may begin with a dash: kept
        ("my video, final|v2", "my_video_final_v2"),
        ("..", "video"),
        ("../../etc/passwd", "etc_passwd"),
        ("a..b", "a.b"),
        (".hidden", "hidden"),
        ("vidéo été", "vid_o_t"),
        ("it's \"quoted\"", "it_s_quoted"),
        ("$(rm -rf ~);`x`", "rm_-rf_x"),
        ("", "video"),
    ],
)
def test_sanitize_video_id(stem, expected):
    key = sanitize_video_id(stem)
    assert key == expected
    assert is_safe_key(key)
    assert "," not in key and "|" not in key


def test_sanitize_caps_length():
    assert len(sanitize_video_id("x" * 500)) == MAX_KEY_LENGTH


def test_unique_key_adds_hash_then_counter_on_collision():
    taken = {"clip": 1}
    assert unique_key("clip", "abcdef0123456789", taken) == "clip-abcdef01"
    taken["clip-abcdef01"] = 1
    assert unique_key("clip", "abcdef0123456789", taken) == "clip-abcdef01-2"
    assert unique_key("other", "abcdef0123456789", taken) == "other"


@pytest.mark.parametrize("key", ["..", ".", "a/b", "a,b", "a|b", "", ".x", "a..b", "a b"])
def test_unsafe_keys_are_refused(key):
    assert not is_safe_key(key)
