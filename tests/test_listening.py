"""The servers the platform starts listen on loopback only.

`fvc ui` (dagster dev: webserver, daemon, code server and its gRPC child) and
`fvc mlflow-ui` run for real, once each, from the `fvc` console script, on a
free port with a temporary DAGSTER_HOME and FVC_DATA_DIR, in their own session.
Once they answer HTTP (and the code location and daemon are up), every socket
their processes hold is listed with psutil, a few times over:

- every listening TCP socket and every bound UDP socket is on the host the
  command was given, which is loopback; none is on 0.0.0.0 or ::;
- the code servers `dagster dev` starts talk over Unix sockets (no TCP port at
  all), and those are files other local users cannot connect to (no o+w), not
  abstract names that any local process could reach;
- the listening ports refuse connections on the machine's other addresses.

`fvc ui` runs with its default host (what `make ui` does); `fvc mlflow-ui` runs
with `--host 127.0.0.2`, so the test sees the option reach the server (127.0.0.1
then refuses), and the parser's defaults are checked to be 127.0.0.1 for both.

Servers are stopped by session: SIGINT, then SIGKILL for whatever is left.
"""

import contextlib
import ipaddress
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

# `python -m pytest` puts the repo root on sys.path; `.venv/bin/pytest` alone does not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fvc_assets.cli import build_parser  # noqa: E402
from tests.ui_server import free_port, wait_for  # noqa: E402

pytestmark = pytest.mark.timeout(480)

FVC = Path(sys.executable).with_name("fvc")
SAMPLES = 3  # socket listings per server, SAMPLE_GAP_S apart: late listeners are seen too
SAMPLE_GAP_S = 2.0
STOP_TIMEOUT_S = 45


@dataclass(frozen=True)
class Socket:
    pid: int
    process: str  # a short name of the process (its command line, cut)
    kind: str  # "tcp", "udp" or "unix"
    address: str  # the IP, or the Unix socket's path
    port: int | None = None

    def __str__(self) -> str:
        where = f"{self.address}:{self.port}" if self.port is not None else self.address
        return f"{self.kind} {where} (pid {self.pid}: {self.process})"


@dataclass
class Server:
    name: str
    host: str
    port: int
    process: subprocess.Popen
    log: Path
    sockets: set[Socket] = field(default_factory=set)
    processes: dict[int, str] = field(default_factory=dict)  # every pid seen in its session -> command line
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log_tail(self, n: int = 40) -> str:
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "\n".join(lines[-n:])


def _own_session() -> None:
    """In the child before exec: a session of its own (stopped as one), and SIGINT at its default.

    A shell that starts pytest in the background leaves SIGINT ignored, and an ignored
    signal stays ignored across exec; dagster dev would then never hear the SIGINT.
    """
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def session_processes(sid: int) -> list[psutil.Process]:
    """Live (not zombie) processes of the session ``sid``: the server and everything it started."""
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def bound_sockets(server: Server) -> set[Socket]:
    """Listening TCP, bound unconnected UDP and bound Unix sockets of every process in the server's session."""
    sockets = set()
    for proc in session_processes(server.process.pid):
        try:
            cmdline = " ".join(proc.cmdline())
            connections = proc.net_connections(kind="all")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        server.processes[proc.pid] = cmdline
        short = cmdline[:120]
        for c in connections:
            if c.family in (socket.AF_INET, socket.AF_INET6):
                if c.type == socket.SOCK_STREAM and c.status == psutil.CONN_LISTEN:
                    sockets.add(Socket(proc.pid, short, "tcp", c.laddr.ip, c.laddr.port))
                elif c.type == socket.SOCK_DGRAM and c.laddr and not c.raddr:
                    sockets.add(Socket(proc.pid, short, "udp", c.laddr.ip, c.laddr.port))
            elif c.family == socket.AF_UNIX and c.laddr:
                sockets.add(Socket(proc.pid, short, "unix", c.laddr))
    return sockets


def sample_sockets(server: Server) -> None:
    for i in range(SAMPLES):
        if i:
            time.sleep(SAMPLE_GAP_S)
        if server.process.poll() is not None:
            pytest.fail(f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}")
        server.sockets |= bound_sockets(server)


def start(name: str, args: list[str], root: Path, host: str, port: int) -> Server:
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DAGSTER_HOME": str(root / "dagster_home"), "FVC_DATA_DIR": str(root / "data"),
           "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)  # the embedded store under the temporary DAGSTER_HOME
    log = root / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(FVC), *args], cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   preexec_fn=_own_session)
    return Server(name, host, port, process, log)


def stop(server: Server) -> None:
    """SIGINT to the server's session, wait until every process in it is gone, then SIGKILL the rest."""
    sid = server.process.pid
    started = time.monotonic()
    try:
        os.killpg(sid, signal.SIGINT)
    except ProcessLookupError:
        return
    deadline = started + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        server.process.poll()
        if not session_processes(sid):
            break
        time.sleep(0.5)
    leftover = session_processes(sid)
    for proc in leftover:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    try:
        os.killpg(sid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    server.process.wait(timeout=10)
    server.timings["stop_s"] = round(time.monotonic() - started, 1)
    server.timings["killed_after_sigint"] = len(leftover)
    for sock in server.sockets:  # a killed code server leaves its socket file behind
        if sock.kind == "unix" and sock.address.startswith(("/tmp/", "/var/tmp/")):
            Path(sock.address).unlink(missing_ok=True)


def get(url: str, timeout: float = 5) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


def graphql(server: Server, query: str) -> dict | None:
    request = urllib.request.Request(f"{server.url}/graphql", json.dumps({"query": query}).encode(),
                                     {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            payload = json.load(response)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, ValueError):
        return None
    return payload.get("data")


READY = """{
  version
  workspaceOrError { ... on Workspace { locationEntries { name loadStatus locationOrLoadError { __typename } } } }
  instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } }
}"""


def dagster_ready(server: Server):
    """The webserver answers, the `fvc` code location is loaded and every required daemon is healthy."""
    if server.process.poll() is not None:
        pytest.fail(f"fvc ui exited with {server.process.returncode}:\n{server.log_tail()}")
    data = graphql(server, READY)
    if not data:
        return None
    entries = data["workspaceOrError"].get("locationEntries") or []
    loaded = any(e["name"] == "fvc" and e["loadStatus"] == "LOADED"
                 and e["locationOrLoadError"]["__typename"] == "RepositoryLocation" for e in entries)
    daemons = [d for d in data["instance"]["daemonHealth"]["allDaemonStatuses"] if d["required"]]
    return data if loaded and daemons and all(d["healthy"] for d in daemons) else None


def other_addresses() -> list[str]:
    """This machine's non-loopback IPv4/IPv6 addresses (link-local ones left out: they need a scope)."""
    found = []
    for addresses in psutil.net_if_addrs().values():
        for a in addresses:
            if a.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            ip = ipaddress.ip_address(a.address.split("%")[0])
            if not (ip.is_loopback or ip.is_link_local):
                found.append(str(ip))
    return found


def refuses(address: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(3)
        try:
            s.connect((address, port))
        except (ConnectionRefusedError, TimeoutError, OSError):
            return True
    return False


def assert_loopback_only(server: Server) -> None:
    inet = [s for s in server.sockets if s.kind in ("tcp", "udp")]
    wildcard = [str(s) for s in inet if ipaddress.ip_address(s.address).is_unspecified]
    assert not wildcard, f"{server.name} listens on every interface: {wildcard}"
    elsewhere = [str(s) for s in inet if not ipaddress.ip_address(s.address).is_loopback or s.address != server.host]
    assert not elsewhere, f"{server.name} listens beyond {server.host}: {elsewhere}"
    for s in server.sockets:
        if s.kind != "unix":
            continue
        assert not s.address.startswith(("@", "\0")), f"abstract Unix socket, reachable by any local process: {s}"
        mode = os.stat(s.address).st_mode
        assert stat.S_ISSOCK(mode), f"not a socket file: {s}"
        assert not mode & stat.S_IWOTH, (
            f"other local users may connect to {s} (mode {stat.filemode(mode)}; check the umask)")
    for address in other_addresses():
        for s in inet:
            if s.kind == "tcp":
                assert refuses(address, s.port), f"{s} answers on {address}"


def can_bind(host: str) -> bool:
    try:
        with socket.socket() as s:
            s.bind((host, 0))
        return True
    except OSError:
        return False


@contextlib.contextmanager
def serving(server: Server, ready, timeout: float, what: str):
    """Wait for ``ready()``, sample the server's sockets, yield it; stop it however the test ends."""
    try:
        began = time.monotonic()
        wait_for(ready, timeout, what)
        server.timings["ready_s"] = round(time.monotonic() - began, 1)
        sample_sockets(server)
        yield server
    finally:
        stop(server)
        print(f"\n{server.name} timings: {server.timings}")


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory):
    """`fvc ui --port P` (default host), up with its code location loaded and its daemons healthy."""
    port = free_port()
    server = start("fvc-ui", ["ui", "--port", str(port)], tmp_path_factory.mktemp("fvc-ui"), "127.0.0.1", port)
    with serving(server, lambda: dagster_ready(server), 240, "fvc ui: webserver, code location and daemons"):
        yield server


@pytest.fixture(scope="module")
def mlflow_ui(tmp_path_factory):
    """`fvc mlflow-ui --host 127.0.0.2 --port Q` (127.0.0.1 where 127.0.0.2 cannot be bound), answering /health."""
    host = "127.0.0.2" if can_bind("127.0.0.2") else "127.0.0.1"
    port = free_port()
    server = start("fvc-mlflow-ui", ["mlflow-ui", "--host", host, "--port", str(port)],
                   tmp_path_factory.mktemp("fvc-mlflow-ui"), host, port)

    def answering():
        if server.process.poll() is not None:
            pytest.fail(f"fvc mlflow-ui exited with {server.process.returncode}:\n{server.log_tail()}")
        return get(f"{server.url}/health")

    with serving(server, answering, 180, "fvc mlflow-ui to answer /health"):
        yield server


def test_the_cli_defaults_to_loopback():
    parser = build_parser()
    assert parser.parse_args(["ui"]).host == "127.0.0.1"
    assert parser.parse_args(["mlflow-ui"]).host == "127.0.0.1"


def test_fvc_ui_listens_on_loopback_only_and_its_code_servers_on_private_unix_sockets(dagster_ui):
    server = dagster_ui
    roles = {
        "webserver": "-m dagster_webserver",
        "daemon": "-m dagster._daemon run",
        "code server": "-m dagster code-server start",
        "code server's gRPC child": "-m dagster api grpc",
    }
    pids = {role: [pid for pid, cmd in server.processes.items() if marker in cmd] for role, marker in roles.items()}
    assert all(pids.values()), f"not every dagster dev process was seen: {pids}\n{server.processes}"

    assert_loopback_only(server)

    # The webserver is the one TCP listener, on the port and host `fvc ui` was given.
    tcp = {(s.pid, s.address, s.port) for s in server.sockets if s.kind == "tcp"}
    assert tcp == {(pids["webserver"][0], "127.0.0.1", server.port)}, tcp
    assert not [s for s in server.sockets if s.kind == "udp"]
    webserver_cmd = server.processes[pids["webserver"][0]]
    assert "--host 127.0.0.1" in webserver_cmd and f"--port {server.port}" in webserver_cmd
    assert graphql(server, "{ version }")["version"]

    # Each code server serves gRPC on the Unix socket named in its command line, and has no TCP port.
    for role in ("code server", "code server's gRPC child"):
        for pid in pids[role]:
            words = server.processes[pid].split()
            assert "--socket" in words and "--port" not in words, server.processes[pid]
            path = words[words.index("--socket") + 1]
            own = {s.address for s in server.sockets if s.pid == pid and s.kind == "unix"}
            assert path in own, (role, path, own)
            assert not [s for s in server.sockets if s.pid == pid and s.kind != "unix"]


def test_fvc_mlflow_ui_listens_only_on_the_host_it_was_given(mlflow_ui):
    server = mlflow_ui
    assert_loopback_only(server)
    tcp = {(s.address, s.port) for s in server.sockets if s.kind == "tcp"}
    assert tcp == {(server.host, server.port)}, tcp  # uvicorn and its workers share the one socket
    assert not [s for s in server.sockets if s.kind == "udp"]
    assert get(f"{server.url}/health") is not None
    if server.host != "127.0.0.1":
        assert refuses("127.0.0.1", server.port), "--host was not passed on: the MLflow UI answers on 127.0.0.1"
    assert any(f"--host {server.host}" in cmd for cmd in server.processes.values()), server.processes



def test_the_local_slurm_daemons_listen_on_loopback_only(slurm_cluster):
    """scripts/slurm-local.sh binds slurmctld and each node's slurmd to 127.0.0.1 (CommunicationParameters)."""
    listening = {}
    for name in ("slurmctld", *(f"slurmd-{node}" for node in slurm_cluster.nodes)):
        pid = int((slurm_cluster.state_dir / "pids" / f"{name}.pid").read_text().split()[0])
        listening[name] = {(c.laddr.ip, c.laddr.port) for c in psutil.Process(pid).net_connections(kind="inet")
                           if c.status == psutil.CONN_LISTEN}
    assert all(listening.values()), listening
    assert {ip for sockets in listening.values() for ip, _ in sockets} == {"127.0.0.1"}, listening
