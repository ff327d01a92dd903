"""chill-server driven by the official OpenAI Python client.

Starts the built `chill-server` (process backend) in front of `vllm-sim` on free ports of 127.0.0.1,
then talks to it with `openai.OpenAI`: a cold chat completion (wakes the model), a streamed one, the
models list, a legacy completion, and after the idle scale-down one more cold streamed request.

Binaries: $CHILL_SERVER_BINARY and $VLLM_SIM_BINARY, else `.build/debug/` of this package
(`swift build --product chill-server --product vllm-sim`). The Swift test
`ProxyEndToEndTests.openAIPythonClientAgainstChillServer` runs this file as part of `swift test`.
"""

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import openai
import pytest

ROOT = Path(__file__).resolve().parents[2]
MODEL = "e2e-model"
STARTUP_SECONDS = 1.0
IDLE_TIMEOUT = "3s"


def binary(name: str, variable: str) -> str:
    path = os.environ.get(variable) or str(ROOT / ".build" / "debug" / name)
    if not os.access(path, os.X_OK):
        pytest.fail(f"{name} not found at {path}: run `swift build --product {name}` or set {variable}")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def wait_until(what: str, condition, timeout: float = 15.0, interval: float = 0.02):
    """Bounded polling: returns once condition() is truthy, fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition()
            if last:
                return last
        except OSError as error:  # not listening yet
            last = error
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


class ChillServer:
    def __init__(self, port: int, sim_port: int, process: subprocess.Popen, log_dir: Path):
        self.port = port
        self.sim_port = sim_port
        self.process = process
        self.log_dir = log_dir
        self.base = f"http://127.0.0.1:{port}"

    def stats(self) -> dict:
        return get_json(self.base + "/proxy/stats")

    def state(self) -> str:
        return self.stats()["state"]

    def logs(self) -> str:
        text = ""
        for name in ("chill-server.log", "backend.log"):
            path = self.log_dir / name
            if path.exists():
                text += f"--- {name}\n" + path.read_text(errors="replace")[-4000:]
        return text


@pytest.fixture
def chill():
    chill_server = binary("chill-server", "CHILL_SERVER_BINARY")
    vllm_sim = binary("vllm-sim", "VLLM_SIM_BINARY")
    port, sim_port = free_port(), free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="chill-e2e-py-"))
    command = (
        f"{vllm_sim} --port {sim_port} --served-model-name {MODEL} "
        f"--startup-seconds {STARTUP_SECONDS} --tokens-per-second 100"
    )
    args = [
        chill_server, "--backend", "process", "--command", command,
        "--host", "127.0.0.1", "--port", str(port), "--target-port", str(sim_port),
        "--served-model-name", MODEL, "--idle-timeout", IDLE_TIMEOUT, "--wake-timeout", "30s",
        "--stop-grace", "3s", "--shutdown-grace", "3s", "--log-file", str(log_dir / "backend.log"),
    ]
    with open(log_dir / "chill-server.log", "wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = ChillServer(port, sim_port, process, log_dir)
    try:
        wait_until("chill-server to listen", lambda: process.poll() is None and listening(port), timeout=20)
        yield server
    finally:
        # SIGTERM: chill-server drains and stops its vllm-sim child; SIGKILL if it takes too long.
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if listening(sim_port):
            print(server.logs())
        assert not listening(sim_port), "vllm-sim outlived chill-server"


def test_openai_client_through_chill(chill: ChillServer):
    client = openai.OpenAI(base_url=chill.base + "/v1", api_key="unused", max_retries=0, timeout=30)
    messages = [{"role": "user", "content": "Say hi"}]

    # Scaled down: the models list is answered without waking anything.
    assert chill.state() == "ScaledDown"
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL]
    assert chill.state() == "ScaledDown"
    assert not listening(chill.sim_port)

    # A cold, non-streaming chat completion wakes the model and is answered.
    started = time.monotonic()
    completion = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=4)
    cold_seconds = time.monotonic() - started
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "Hello ha ha!"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 4
    assert cold_seconds >= STARTUP_SECONDS * 0.9, f"a cold request took only {cold_seconds:.2f}s"
    stats = chill.stats()
    assert stats["state"] == "Ready" and stats["wakes"]["count"] == 1, stats

    # A streamed chat completion: deltas in order, then the finish reason.
    stream = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=8, stream=True)
    deltas, finish = [], None
    for chunk in stream:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        if choice.delta.content:
            deltas.append(choice.delta.content)
        if choice.finish_reason:
            finish = choice.finish_reason
    assert deltas == ["Hello", " ha", " ha", "!", " I", " am", " a", " simulated"]
    assert "".join(deltas) == "Hello ha ha! I am a simulated"
    assert finish == "length"

    # The models list again (now proxied state is Ready; still chill's own answer) and a legacy completion.
    assert [m.id for m in client.models.list().data] == [MODEL]
    legacy = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=3)
    assert legacy.object == "text_completion"
    assert legacy.choices[0].text == "Hello ha ha"
    assert chill.stats()["wakes"]["count"] == 1

    # Idle past the timeout: scaled down, the engine process gone.
    wait_until("the idle scale-down", lambda: chill.state() == "ScaledDown", timeout=15)
    wait_until("vllm-sim to exit", lambda: not listening(chill.sim_port), timeout=10)

    # One more cold request, streamed this time: held through the wake, then streamed.
    started = time.monotonic()
    stream = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=5, stream=True, stream_options={"include_usage": True})
    deltas, finish, usage = [], None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        if chunk.choices:
            if chunk.choices[0].delta.content:
                deltas.append(chunk.choices[0].delta.content)
            finish = chunk.choices[0].finish_reason or finish
    assert time.monotonic() - started >= STARTUP_SECONDS * 0.9
    assert "".join(deltas) == "Hello ha ha! I"
    assert finish == "length"
    assert usage is not None and usage.completion_tokens == 5
    stats = chill.stats()
    assert stats["state"] == "Ready" and stats["wakes"]["count"] == 2, stats


def test_openai_client_sees_openai_shaped_errors(chill: ChillServer):
    client = openai.OpenAI(base_url=chill.base + "/v1", api_key="unused", max_retries=0, timeout=30)
    # An unknown model is relayed from the engine (after the wake) as the client's NotFoundError.
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    assert "no-such-model" in str(raised.value)
