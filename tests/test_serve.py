"""``fvc serve`` as a real server process, a real MLflow registry and real HTTP clients (requests, raw sockets)."""

import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.bad_inputs import ffmpeg
from tests.conftest import encode_video
from tests.serve_fixtures import FVC, THRESHOLDS, register_bundle, registry_of, start_server, train_folds

pytestmark = pytest.mark.slow
TIMEOUT_S = 10  # the service's request_timeout_s in these tests
SETTINGS = {"workers": 1, "queue_size": 1, "max_upload_mb": 0.5, "max_duration_s": 3, "max_batch": 3,
            "request_timeout_s": TIMEOUT_S, "reload_interval_s": 1}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A data root, an instance folder with the embedded MLflow store, a champion, and a few files."""
    base = tmp_path_factory.mktemp("serve")
    home, data = base / "dagster_home", base / "data"
    home.mkdir()
    folds = train_folds(data)
    registry = registry_of(home)
    first = register_bundle(data, registry, folds, THRESHOLDS)
    registry.set_champion(first.version, "test", "fixture")
    videos = base / "videos"
    encode_video(videos / "a.mp4", frames=20, width=160, height=120)
    encode_video(videos / "b.mp4", frames=20, width=160, height=120, seed=3)
    encode_video(videos / "long.mp4", frames=40, width=64, height=48, fps=10)  # 4 s > max_duration_s
    (videos / "notes.txt").write_text("not a video\n")
    data_a = (videos / "a.mp4").read_bytes()
    (videos / "truncated.mp4").write_bytes(data_a[: len(data_a) // 3])
    (videos / "unknown_codec.mp4").write_bytes(data_a.replace(b"avc1", b"zzzz"))  # a codec no decoder knows
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(videos / "audio_only.m4a"))
    (videos / "big.bin").write_bytes(os.urandom(600 * 1024))  # over max_upload_mb
    allowed = data / "shared"
    allowed.mkdir()
    (allowed / "a.mp4").write_bytes(data_a)
    (allowed / "escape.mp4").symlink_to(videos / "b.mp4")  # inside by name, outside in fact
    return {"home": home, "data": data, "folds": folds, "registry": registry, "first": first, "videos": videos,
            "allowed": allowed}


@pytest.fixture(scope="module")
def server(root, tmp_path_factory):
    server = start_server(root["home"], root["data"], tmp_path_factory.mktemp("server"),
                          paths_root=str(root["allowed"]), **SETTINGS)
    server.wait_ready()
    yield server
    server.stop()


def score(server, path: Path, **params):
    return requests.post(f"{server.url}/v1/score", params={"name": path.name, **params}, data=path.read_bytes(),
                         headers={**server.auth, "Content-Type": "application/octet-stream"}, timeout=60)


def leftovers(data: Path) -> list[str]:
    """Anything the service left on disk besides its fetched models."""
    serve = data / "serve"
    return sorted(str(p.relative_to(serve)) for p in serve.rglob("*")
                  if not p.relative_to(serve).parts[0] == "models" and p.is_file())


def test_health_needs_no_token_and_everything_else_needs_the_right_one(server):
    assert requests.get(f"{server.url}/health", timeout=5).json() == {"status": "ok"}
    ready = requests.get(f"{server.url}/ready", timeout=5).json()
    assert ready["ready"] and ready["model"] == "logistic_regression"
    missing = requests.get(f"{server.url}/v1/model", timeout=5)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
    assert "missing bearer token" in missing.json()["detail"]
    wrong = requests.get(f"{server.url}/v1/model", headers={"Authorization": "Bearer " + "x" * 32}, timeout=5)
    assert wrong.status_code == 401 and "wrong bearer token" in wrong.json()["detail"]
    upload = requests.post(f"{server.url}/v1/score", data=b"x", timeout=5)  # no token: refused before reading
    assert upload.status_code == 401
    import psutil

    listening = [c.laddr for c in psutil.Process(server.process.pid).net_connections("inet")
                 if c.status == psutil.CONN_LISTEN]
    assert listening and all(address.ip == "127.0.0.1" for address in listening), listening
    for pid in server.worker_pids():  # scoring processes take work over a pipe, never a socket
        assert not psutil.Process(pid).net_connections("inet")
    spec = requests.get(f"{server.url}/openapi.json", timeout=5).json()
    assert {"/v1/score", "/v1/score/batch", "/v1/score/paths", "/v1/model", "/health", "/ready"} <= set(spec["paths"])


def test_a_video_is_scored_as_fvc_predict_scores_it_and_names_the_model_version(server, root):
    from fvc_assets.predict import decide, predict_videos

    described = requests.get(f"{server.url}/v1/model", headers=server.auth, timeout=5).json()
    first = root["first"]
    assert described["version"] == f"{first.version}-{first.digest}"
    assert described["source"] == "fvc-detector@champion" and described["operating_points"] == THRESHOLDS
    video = root["videos"] / "a.mp4"
    reply = score(server, video, operating_point="fpr_5")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["model"] == {"name": "logistic_regression", "version": described["version"]}
    bundle_models = next((root["data"] / "serve" / "models").glob(f"v{first.version}-*")) / "models"
    expected = predict_videos([video], root["data"], bundle_models, root["data"] / "cache", root["data"] / "p",
                              "logistic_regression")[0]
    decide([expected], THRESHOLDS, "fpr_5")
    assert body["probability_fake"] == pytest.approx(expected.probability_fake, abs=1e-9)
    assert body["fold_scores"] == pytest.approx(expected.fold_scores, abs=1e-9)
    assert body["decision"] == expected.decision and body["threshold"] == THRESHOLDS["fpr_5"]
    assert body["explanation"] and {"feature", "value", "contribution"} <= set(body["explanation"][0])
    assert body["facts"]["width"] == 160 and body["timings"]["total_s"] >= body["timings"]["score_s"] > 0
    other_point = score(server, video, operating_point="fpr_1").json()
    assert other_point["threshold"] == THRESHOLDS["fpr_1"] and other_point["operating_point"] == "fpr_1"
    assert leftovers(root["data"]) == []


@pytest.mark.parametrize("name, status, reason", [
    ("notes.txt", 422, "not a readable video container"),
    ("truncated.mp4", 422, ""),
    ("audio_only.m4a", 422, "no video stream"),
    ("unknown_codec.mp4", 422, "Decoder not found"),
    ("long.mp4", 422, "over the duration limit"),
    ("big.bin", 413, "over the limit"),
])
def test_bad_uploads_get_a_4xx_with_the_reason_and_leave_nothing_behind(server, root, name, status, reason):
    reply = score(server, root["videos"] / name)
    assert reply.status_code == status, reply.text
    assert name in reply.json()["detail"] or status == 413
    assert reason in reply.json()["detail"]
    assert requests.get(f"{server.url}/ready", timeout=5).status_code == 200
    assert leftovers(root["data"]) == []


def test_an_empty_upload_or_an_unknown_operating_point_is_refused(server, root):
    empty = requests.post(f"{server.url}/v1/score", data=b"", headers=server.auth, timeout=10)
    assert empty.status_code == 400 and "empty upload" in empty.json()["detail"]
    point = score(server, root["videos"] / "a.mp4", operating_point="fpr_50")
    assert point.status_code == 400 and "fpr_1" in point.json()["detail"]


def test_a_batch_upload_scores_each_file_and_names_each_failure(server, root):
    videos = root["videos"]
    files = [("files", (n, (videos / n).read_bytes(), "application/octet-stream"))
             for n in ("a.mp4", "b.mp4", "notes.txt")]
    reply = requests.post(f"{server.url}/v1/score/batch", files=files, headers=server.auth, timeout=60)
    assert reply.status_code == 200, reply.text
    results = {r["video"]: r for r in reply.json()["results"]}
    assert results["a.mp4"]["status"] == 200 and results["b.mp4"]["status"] == 200
    assert results["a.mp4"]["probability_fake"] == pytest.approx(score(server, videos / "a.mp4").json()["probability_fake"])
    assert results["notes.txt"]["status"] == 422 and "notes.txt" in results["notes.txt"]["error"]
    too_many = [("files", (f"{i}.mp4", b"x", "video/mp4")) for i in range(4)]
    refused = requests.post(f"{server.url}/v1/score/batch", files=too_many, headers=server.auth, timeout=30)
    assert refused.status_code == 400
    assert leftovers(root["data"]) == []


def test_paths_are_scored_only_inside_the_configured_root(server, root):
    def paths(*given):
        return requests.post(f"{server.url}/v1/score/paths", json={"paths": list(given)}, headers=server.auth,
                             timeout=60)

    inside = paths("a.mp4", "missing.mp4")
    assert inside.status_code == 200, inside.text
    results = inside.json()["results"]
    assert results[0]["status"] == 200 and results[0]["video"] == "a.mp4"
    assert results[1]["status"] == 404 and "no such file" in results[1]["error"]
    for outside in ("../videos/a.mp4", str(root["videos"] / "a.mp4"), "escape.mp4"):
        refused = paths("a.mp4", outside)
        assert refused.status_code == 403, (outside, refused.text)
        assert "outside the root" in refused.json()["detail"]
    assert paths("a.mp4", "a.mp4", "a.mp4", "a.mp4").status_code == 400  # over max_batch


def slow_upload(server, total: int, sent: bytes) -> socket.socket:
    """A client that announces ``total`` bytes and sends only ``sent`` (then keeps the connection open)."""
    host, port = server.url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)), timeout=30)
    conn.sendall(f"POST /v1/score?name=slow.mp4 HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {server.token}\r\n"
                 f"Content-Type: application/octet-stream\r\nContent-Length: {total}\r\n\r\n".encode() + sent)
    return conn


def test_overload_gets_503_with_retry_after_slow_clients_time_out_and_dropped_uploads_leave_nothing(server, root):
    video = (root["videos"] / "a.mp4").read_bytes()
    first = slow_upload(server, len(video), video[:1000])
    second = slow_upload(server, len(video), video[:1000])
    deadline = time.monotonic() + 30
    while requests.get(f"{server.url}/v1/model", headers=server.auth, timeout=5).json()["requests_in_progress"] < 2:
        assert time.monotonic() < deadline, "the two slow uploads were never admitted"
        time.sleep(0.1)  # both admitted: the service takes workers + queue_size = 2
    assert len(list((root["data"] / "serve" / "uploads").iterdir())) == 0  # uploads have no name on disk
    busy = score(server, root["videos"] / "a.mp4")
    assert busy.status_code == 503, busy.text
    assert int(busy.headers["Retry-After"]) >= 1 and "busy" in busy.json()["detail"]
    assert requests.get(f"{server.url}/health", timeout=5).status_code == 200  # health is never queued
    first.close()  # a dropped connection mid-upload frees its place
    deadline = time.monotonic() + 10
    while (reply := score(server, root["videos"] / "a.mp4")).status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert reply.status_code == 200, reply.text
    second.settimeout(TIMEOUT_S + 20)
    answer = http.client.HTTPResponse(second)  # the slow client is answered when its time limit runs out
    answer.begin()  # headers and body may come in separate packets: read them as HTTP, not as one recv
    body = answer.read().decode()
    second.close()
    assert answer.status == 408, body
    assert "did not complete within" in body
    assert leftovers(root["data"]) == []


def ready_worker(server, timeout: float = 180.0) -> int:
    """The pid of the scoring process once it holds the current model (a replacement loads for seconds,
    longer on a busy machine): what a client sees as /ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reply = requests.get(f"{server.url}/ready", timeout=5)
        except requests.ConnectionError:  # the server is still starting
            time.sleep(0.2)
            continue
        pids = server.worker_pids()
        if reply.status_code == 200 and reply.json()["workers_ready"] >= 1 and len(pids) == 1:
            return pids[0]
        time.sleep(0.2)
    raise AssertionError(f"no scoring process ready within {timeout} s: {server.log.read_text()[-2000:]}")


def in_background(function):
    """Runs ``function`` in a thread: out["reply"] is its result, out["error"] what it raised."""
    out = {}

    def run():
        try:
            out["reply"] = function()
        except requests.RequestException as exc:
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def test_a_scoring_process_killed_mid_video_fails_that_request_only(server, root):
    worker = ready_worker(server)
    os.kill(worker, signal.SIGSTOP)  # it takes the job but never answers
    thread, out = in_background(lambda: score(server, root["videos"] / "a.mp4"))
    time.sleep(1.0)
    os.kill(worker, signal.SIGKILL)
    thread.join(30)
    reply = out["reply"]
    assert reply.status_code == 500 and "killed by signal 9" in reply.json()["detail"], reply.text
    assert ready_worker(server) != worker  # a new process takes over
    after = score(server, root["videos"] / "a.mp4")
    assert after.status_code == 200, after.text
    assert leftovers(root["data"]) == []


def test_a_request_past_its_time_limit_gets_504_and_its_process_is_replaced(server, root):
    worker = ready_worker(server)
    os.kill(worker, signal.SIGSTOP)
    started = time.monotonic()
    reply = score(server, root["videos"] / "a.mp4")
    assert reply.status_code == 504 and "time limit" in reply.json()["detail"], reply.text
    assert TIMEOUT_S - 1 < time.monotonic() - started < TIMEOUT_S + 15
    assert not Path(f"/proc/{worker}").exists()  # killed, not left stopped
    assert ready_worker(server) != worker
    assert score(server, root["videos"] / "a.mp4").status_code == 200


def test_a_new_champion_is_served_without_dropping_the_request_in_flight(server, root):
    registry, old = root["registry"], root["first"]
    second = register_bundle(root["data"], registry, root["folds"], {**THRESHOLDS, "fpr_5": 0.25})
    assert second.version != old.version and second.digest != old.digest
    worker = ready_worker(server)
    os.kill(worker, signal.SIGSTOP)  # a request in flight on the old version
    thread, out = in_background(lambda: score(server, root["videos"] / "a.mp4"))
    time.sleep(0.5)
    registry.set_champion(second.version, "test", "a better model")
    time.sleep(2.5)  # the service sees the alias move (reload_interval_s 1)
    os.kill(worker, signal.SIGCONT)
    thread.join(30)
    assert out["reply"].status_code == 200, out["reply"].text
    assert out["reply"].json()["model"]["version"] == f"{old.version}-{old.digest}"
    new = f"{second.version}-{second.digest}"
    deadline = time.monotonic() + 60
    while requests.get(f"{server.url}/v1/model", headers=server.auth, timeout=5).json()["version"] != new:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert ready_worker(server) != worker  # the old version's process was replaced once its request was done
    reply = score(server, root["videos"] / "a.mp4").json()
    assert reply["model"]["version"] == new and reply["threshold"] == 0.25
    rollback = subprocess.run([*FVC, "model", "rollback"], env={**os.environ, "DAGSTER_HOME": str(root["home"]),
                                                                 "FVC_DATA_DIR": str(root["data"])},
                              capture_output=True, text=True, timeout=120)
    assert rollback.returncode == 0, rollback.stderr
    assert f"= v{old.version} (was v{second.version})" in rollback.stdout
    deadline = time.monotonic() + 60
    while requests.get(f"{server.url}/v1/model", headers=server.auth, timeout=5).json()["version"] != \
            f"{old.version}-{old.digest}":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    ready_worker(server)
    assert score(server, root["videos"] / "a.mp4").json()["model"]["version"] == f"{old.version}-{old.digest}"


def test_a_killed_server_leaves_no_upload_and_its_next_start_sweeps_the_scratch(root, tmp_path):
    server = start_server(root["home"], root["data"], tmp_path, **SETTINGS)
    try:
        worker = ready_worker(server)
        os.kill(worker, signal.SIGSTOP)  # mid-scoring
        thread, out = in_background(lambda: score(server, root["videos"] / "a.mp4"))
        time.sleep(1.0)
        stale = root["data"] / "serve" / "work" / "left-by-a-crash"
        stale.mkdir(parents=True)
        (stale / "clip.mp4").write_bytes(b"x")
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(10)
        thread.join(30)
        assert "error" in out  # the connection ended with the server
        deadline = time.monotonic() + 10
        while Path(f"/proc/{worker}").exists() and time.monotonic() < deadline:  # dies with its parent
            os.kill(worker, signal.SIGCONT)
            time.sleep(0.2)
        assert not Path(f"/proc/{worker}").exists()
        assert [p for p in (root["data"] / "serve" / "uploads").iterdir()] == []
    finally:
        server.stop()
    again = start_server(root["home"], root["data"], tmp_path, **SETTINGS)
    try:
        again.wait_ready()
        assert not stale.exists()
    finally:
        again.stop()


def test_without_a_champion_fvc_serve_says_how_to_get_one(tmp_path):
    token = tmp_path / "token"
    token.write_text("t" * 32)
    token.chmod(0o600)
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "FVC_DATA_DIR": str(tmp_path / "data")}
    refused = subprocess.run([*FVC, "serve", "--token-file", str(token)], env=env, capture_output=True, text=True,
                             timeout=120)
    assert refused.returncode == 2
    assert "has no 'champion'" in refused.stderr and "fvc model promote" in refused.stderr
    token.chmod(0o644)
    loose = subprocess.run([*FVC, "serve", "--token-file", str(token)], env=env, capture_output=True, text=True,
                           timeout=120)
    assert loose.returncode == 2 and "readable by others" in loose.stderr
