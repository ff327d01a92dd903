#!/usr/bin/env python3
"""The benchmark driver behind bench/run.sh (which builds the binaries and installs wrk and nginx).

One vllm-sim, three targets in front of it: direct, chill-server (process backend, model awake) and
nginx (proxy_pass, keep-alive upstream). Rounds are interleaved — every case against every target,
then again — so a noisy neighbour hurts all targets alike; the table shows each figure's median over
the rounds. Besides wrk's req/s and latency, it reads the proxy's CPU time (utime+stime from
/proc/PID/stat, all nginx processes summed) over each measured run and divides by the requests
served: the steadiest figure on shared machines.

After that table, three more rows, each with its own chill-server (ROWS selects them; CASES="" skips
the table): `sse` — SSE_STREAMS (1,000) concurrent streams through direct, chill-server and nginx, the
per-chunk forwarding delay from vllm-sim's send instant (--chunk-timestamps) to the client's arrival
instant; `wake` — WAKES cold wakes, vllm-sim's /health turning 200 → the held request reaching it
(vllm-sim --timing-log); `growth` — chill-server's RSS after warm-up and after GROWTH_REQUESTS more
requests (off unless GROWTH_REQUESTS is set).
"""
import asyncio, json, math, os, re, resource, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request

ENV = os.environ
BIN = sys.argv[1] if len(sys.argv) > 1 else ".build/release"
NGINX = sys.argv[2] if len(sys.argv) > 2 else "nginx"
ROUNDS = int(ENV.get("ROUNDS", "3"))
CONNECTIONS = int(ENV.get("CONNECTIONS", "64"))
THREADS = int(ENV.get("THREADS", "2"))
DURATION = ENV.get("DURATION", "10s")
WARMUP = ENV.get("WARMUP", "2s")
STREAM_TOKENS = int(ENV.get("STREAM_TOKENS", "16"))
CASES = ENV.get("CASES", "chat stream chat-1c").split()
MODEL = "bench"
IDLE_CONNECTIONS = int(ENV.get("IDLE_CONNECTIONS", "10000"))
ROWS = ENV.get("ROWS", "sse wake growth").split()
SSE_STREAMS = int(ENV.get("SSE_STREAMS", "1000"))
SSE_TOKENS = int(ENV.get("SSE_TOKENS", "64"))
SSE_TOKENS_PER_SECOND = float(ENV.get("SSE_TOKENS_PER_SECOND", "10"))
SSE_ROUNDS = int(ENV.get("SSE_ROUNDS", "3"))
SSE_RAMP_SECONDS = float(ENV.get("SSE_RAMP_SECONDS", "1"))
WAKES = int(ENV.get("WAKES", "5"))
WAKE_STARTUP_SECONDS = float(ENV.get("WAKE_STARTUP_SECONDS", "1"))
GROWTH_REQUESTS = int(ENV.get("GROWTH_REQUESTS", "0"))
GROWTH_WARMUP = ENV.get("GROWTH_WARMUP", "5s")
GROWTH_STEP = ENV.get("GROWTH_STEP", "10s")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

work = tempfile.mkdtemp(prefix="chill-bench.")
procs = []


def log(message):
    print(f"\033[1m== {message}\033[0m", file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(args, name):
    out = open(os.path.join(work, f"{name}.log"), "w")
    p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    procs.append(p)
    return p


def stop_all():
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + 5
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def http(url, body=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as r:
        return r.status, r.read()


def wait_http(url, what):
    for _ in range(600):
        try:
            http(url, timeout=1)
            return
        except Exception:
            time.sleep(0.05)
    sys.exit(f"timed out waiting for {what} ({url})")


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except FileNotFoundError:
        return []


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        except FileNotFoundError:
            pass
    return total / CLK_TCK


def rss_mb(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE / 1e6


def parse_wrk(text):
    def ms(value):
        number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
        return float(number) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
    errors = 0
    for pattern in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"):
        m = re.search(pattern, text)
        if m:
            errors += sum(int(g) for g in m.groups())
    return dict(requests=requests, rps=rps, p50=p50, p99=p99, errors=errors)


def wrk(port, script, threads, connections, duration, latency=True):
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}", "-s", script]
    if latency:
        args.append("--latency")
    args.append(f"http://127.0.0.1:{port}/v1/chat/completions")
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def idle_connections_rss(chill, port, count):
    """chill-server's RSS while `count` client connections sit idle on it (each sent one request)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            sockets.append(s)
        for s in sockets:
            s.recv(4096)  # the answer; the connection stays open (keep-alive)
        time.sleep(1)
        return rss_mb(chill.pid), len(sockets)
    except OSError as error:
        log(f"opened {len(sockets)} of {count} idle connections: {error}")
        return rss_mb(chill.pid), len(sockets)
    finally:
        for s in sockets:
            s.close()


def start_chill(name, sim_args, idle_timeout="1h"):
    """chill-server (process backend) fronting `vllm-sim <sim_args>`, cold; returns it and both ports."""
    sim_port, chill_port = free_port(), free_port()
    log(f"{name}: chill-server :{chill_port} (process backend) → vllm-sim :{sim_port}")
    sim_command = f"{BIN}/vllm-sim --port {sim_port} --served-model-name {MODEL} {sim_args} --quiet"
    chill = start([f"{BIN}/chill-server", "--backend", "process", "--host", "127.0.0.1", "--port", str(chill_port),
                   "--target-port", str(sim_port), "--served-model-name", MODEL, "--idle-timeout", idle_timeout,
                   "--log-level", "warning", "--log-file", os.path.join(work, f"{name}-backend.log"), "--command", sim_command], name)
    wait_http(f"http://127.0.0.1:{chill_port}/health", "chill-server")
    return chill, chill_port, sim_port


def wake(chill_port):
    """Sends one chat completion (which wakes the model) and checks chill-server says Ready."""
    http(f"http://127.0.0.1:{chill_port}/v1/chat/completions", CHAT, timeout=120)
    stats = json.loads(http(f"http://127.0.0.1:{chill_port}/proxy/stats")[1])
    if stats["state"] != "Ready":
        raise RuntimeError(f"chill-server is {stats['state']}, not Ready")


def stop(p):
    """Stops one process group started by `start` (SIGTERM, SIGKILL after 5 s)."""
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(5)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    procs.remove(p)


def start_nginx(name, sim_port, worker_connections=4096, listen_options=""):
    """nginx (proxy_pass, keep-alive upstream) in front of vllm-sim; returns it and its port."""
    nginx_port = free_port()
    log(f"{name}: nginx :{nginx_port} → vllm-sim :{sim_port} (keepalive upstream)")
    ngx = os.path.join(work, name)
    for d in ("logs", "tmp"):
        os.makedirs(os.path.join(ngx, d), exist_ok=True)
    with open(os.path.join(ngx, "nginx.conf"), "w") as f:
        f.write(f"""worker_processes auto;
pid {ngx}/nginx.pid;
error_log {ngx}/logs/error.log warn;
events {{ worker_connections {worker_connections}; }}
http {{
  access_log off;
  client_body_temp_path {ngx}/tmp/body;
  proxy_temp_path {ngx}/tmp/proxy;
  fastcgi_temp_path {ngx}/tmp/fastcgi;
  uwsgi_temp_path {ngx}/tmp/uwsgi;
  scgi_temp_path {ngx}/tmp/scgi;
  upstream vllm {{ server 127.0.0.1:{sim_port}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{nginx_port}{listen_options};
    keepalive_requests 1000000;
    location / {{
      proxy_pass http://vllm;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
""")
    nginx = start([NGINX, "-p", ngx, "-c", f"{ngx}/nginx.conf", "-g", "daemon off;"], name)
    wait_http(f"http://127.0.0.1:{nginx_port}/health", "nginx")
    return nginx, nginx_port


def write_script(name, body):
    path = os.path.join(work, f"{name}.lua")
    with open(path, "w") as f:
        f.write(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = \'{json.dumps(body)}\'\n')
    return path


CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
LABELS = {"direct": "vllm-sim direct", "chill": "chill-server", "nginx": "nginx proxy_pass"}


def throughput_table():
    """The wrk table (CASES × direct/chill/nginx), then chill-server's RSS figures."""
    chill, chill_port, sim_port = start_chill("chill", "--tokens-per-second 0 --max-tokens-default 1")
    time.sleep(0.5)
    rss_idle = rss_mb(chill.pid)
    wake(chill_port)
    nginx, nginx_port = start_nginx("nginx", sim_port)

    scripts = {"chat": write_script("chat", CHAT), "stream": write_script("stream", dict(CHAT, max_tokens=STREAM_TOKENS, stream=True))}
    targets = {"direct": (sim_port, lambda: []), "chill": (chill_port, lambda: [chill.pid]),
               "nginx": (nginx_port, lambda: [nginx.pid] + children(nginx.pid))}
    results = {}
    for round_number in range(1, ROUNDS + 1):
        for case in CASES:
            threads, connections = (1, 1) if case == "chat-1c" else (THREADS, CONNECTIONS)
            script = scripts[case.removesuffix("-1c")]
            for target, (port, pids) in targets.items():
                log(f"round {round_number}/{ROUNDS}: wrk {case} → {target} ({connections} connections, {threads} threads, {DURATION})")
                wrk(port, script, threads, connections, WARMUP, latency=False)
                before = cpu_seconds(pids())
                figures = parse_wrk(wrk(port, script, threads, connections, DURATION))
                spent = cpu_seconds(pids()) - before
                figures["cpu_us"] = spent / figures["requests"] * 1e6 if figures["requests"] and pids() else None
                results.setdefault((case, target), []).append(figures)

    stats = json.loads(http(f"http://127.0.0.1:{chill_port}/proxy/stats")[1])
    rss_after = rss_mb(chill.pid)
    rss_idle_connections, idle_opened = idle_connections_rss(chill, chill_port, IDLE_CONNECTIONS)
    stop(nginx)
    stop(chill)

    def median(case, target, key):
        values = [r[key] for r in results[(case, target)] if r[key] is not None]
        return statistics.median(values) if values else None

    out = []
    out.append(f"wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION} (chat-1c: -t1 -c1), POST /v1/chat/completions, "
               f"vllm-sim --tokens-per-second 0, {os.cpu_count()} cores, median of {ROUNDS} interleaved rounds")
    out.append(f"chat: 1 token, non-streaming; stream: {STREAM_TOKENS} tokens as SSE. "
               f"chill-server after the run: {stats['state']}, {stats['wakes']['count']} wake(s)")
    out.append("")
    out.append("| case      | target           |      req/s |  p50 ms |  p99 ms | errors | proxy CPU µs/req |")
    out.append("|-----------|------------------|-----------:|--------:|--------:|-------:|-----------------:|")
    for case in CASES:
        for target in targets:
            cpu = median(case, target, "cpu_us")
            errors = sum(r["errors"] for r in results[(case, target)])
            out.append(f"| {case:<9} | {LABELS[target]:<16} | {median(case, target, 'rps'):10.0f} | {median(case, target, 'p50'):7.3f} | "
                       f"{median(case, target, 'p99'):7.3f} | {errors:6d} | {'-' if cpu is None else f'{cpu:.1f}':>16} |")
    out.append("")
    for case in CASES:
        d50, c50, n50 = (median(case, t, "p50") for t in ("direct", "chill", "nginx"))
        d99, c99, n99 = (median(case, t, "p99") for t in ("direct", "chill", "nginx"))
        ratio = median(case, "chill", "rps") / median(case, "nginx", "rps")
        ccpu, ncpu = median(case, "chill", "cpu_us"), median(case, "nginx", "cpu_us")
        cpu_ratio = f"{ccpu / ncpu:.2f}×" if ccpu and ncpu else "-"
        out.append(f"{case}: throughput chill/nginx {ratio:.2f}×, CPU per request chill/nginx {cpu_ratio}; "
                   f"added p50 chill {1000 * (c50 - d50):+.0f} µs, nginx {1000 * (n50 - d50):+.0f} µs; "
                   f"added p99 chill {1000 * (c99 - d99):+.0f} µs, nginx {1000 * (n99 - d99):+.0f} µs")
    out.append("")
    out.append(f"chill-server RSS: {rss_idle:.1f} MB idle (before the first wake), {rss_after:.1f} MB after the run, "
               f"{rss_idle_connections:.1f} MB holding {idle_opened} idle client connections")
    return out


# --- row: concurrent SSE streams, per-chunk forwarding delay ---------------------------------------

class SSEStream(asyncio.Protocol):
    """One streamed chat completion over a raw connection: parses the chunked body and the SSE events
    in it, and for each event with "sim_sent_ns" records arrival − send (both CLOCK_MONOTONIC ns; the
    arrival instant is read once per received segment, before parsing it)."""

    def __init__(self, request, done):
        self.request, self.done = request, done
        self.buffer = bytearray()  # received, not yet parsed (HTTP framing)
        self.body = bytearray()    # de-chunked, not yet split into events
        self.head = None
        self.chunk_left = None     # data bytes of the current chunk still to come (0: its CRLF)
        self.sent = []    # vllm-sim's send instants (ns), one per JSON event
        self.delays = []  # arrival − send (ns), the same order
        self.saw_done = False
        self.complete = False
        self.error = None

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data):
        now = time.monotonic_ns()
        self.buffer += data
        try:
            self.parse(now)
        except Exception as error:  # malformed: count the stream as failed
            self.error = repr(error)
            self.transport.close()

    def parse(self, now):
        buf = self.buffer
        if self.head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self.head = bytes(buf[:end]).decode("latin-1")
            del buf[:end + 4]
            status = self.head.split(" ", 2)[1]
            if status != "200" or "chunked" not in self.head.lower():
                raise ValueError(f"unexpected response head: {self.head!r}")
        while not self.complete:
            if self.chunk_left is None:  # a chunk-size line
                end = buf.find(b"\r\n")
                if end < 0:
                    break
                size = int(bytes(buf[:end]).split(b";")[0], 16)
                del buf[:end + 2]
                if size == 0:
                    self.complete = True
                    self.transport.close()
                    break
                self.chunk_left = size
            elif self.chunk_left == 0:  # the CRLF after a chunk's data
                if len(buf) < 2:
                    break
                if buf[:2] != b"\r\n":
                    raise ValueError("chunk not followed by CRLF")
                del buf[:2]
                self.chunk_left = None
            else:
                take = min(self.chunk_left, len(buf))
                if take == 0:
                    break
                self.body += buf[:take]
                del buf[:take]
                self.chunk_left -= take
        body = self.body
        while True:
            end = body.find(b"\n\n")
            if end < 0:
                break
            event = bytes(body[:end])
            del body[:end + 2]
            mark = event.rfind(b'"sim_sent_ns":')
            if mark >= 0:
                sent = int(event[mark + 14:].rstrip(b"}"))
                self.sent.append(sent)
                self.delays.append(now - sent)
            elif event == b"data: [DONE]":
                self.saw_done = True

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(None)


async def sse_streams(port, count, tokens, spread):
    """`count` concurrent streams to 127.0.0.1:port, started evenly over `spread` seconds; returns them
    and the instant (monotonic ns) the first was started."""
    body = json.dumps(dict(CHAT, max_tokens=tokens, stream=True)).encode()
    request = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    loop = asyncio.get_running_loop()
    timeout = spread + tokens / SSE_TOKENS_PER_SECOND + 60

    async def one(i):
        await asyncio.sleep(spread * i / count)
        done = loop.create_future()
        stream = SSEStream(request, done)
        try:
            transport, _ = await loop.create_connection(lambda: stream, "127.0.0.1", port)
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await asyncio.wait_for(done, timeout)
        except Exception as error:
            stream.error = stream.error or repr(error)
            if stream.head is not None:
                transport.close()
        return stream

    started = time.monotonic_ns()
    return await asyncio.gather(*(one(i) for i in range(count))), started


def percentile(values, q):
    """Nearest-rank percentile of sorted `values`."""
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def sse_row():
    interval = 1 / SSE_TOKENS_PER_SECOND
    sim_args = (f"--tokens-per-second {SSE_TOKENS_PER_SECOND:g} --max-num-seqs {SSE_STREAMS + 64} "
                f"--chunk-timestamps --max-tokens-default 1")
    chill, chill_port, sim_port = start_chill("sse-chill", sim_args)
    wake(chill_port)
    nginx, nginx_port = start_nginx("sse-nginx", sim_port, worker_connections=4 * SSE_STREAMS + 1024, listen_options=" backlog=4096")
    targets = {"direct": (sim_port, lambda: []), "chill": (chill_port, lambda: [chill.pid]),
               "nginx": (nginx_port, lambda: [nginx.pid] + children(nginx.pid))}
    rounds = {t: [] for t in targets}
    load_before = os.getloadavg()[0]
    for round_number in range(1, SSE_ROUNDS + 1):
        for target, (port, pids) in targets.items():
            log(f"sse round {round_number}/{SSE_ROUNDS}: {SSE_STREAMS} streams × {SSE_TOKENS} tokens at "
                f"{SSE_TOKENS_PER_SECOND:g} tokens/s → {target}")
            before = cpu_seconds(pids())
            streams, started = asyncio.run(sse_streams(port, SSE_STREAMS, SSE_TOKENS, interval))
            spent = cpu_seconds(pids()) - before
            delays = sorted(d for s in streams for d in s.delays)
            # After the ramp: while the connections open, each stream's first events (its role event and
            # first token go out together) meet the others' connection set-up.
            ramp_end = started + int((interval + SSE_RAMP_SECONDS) * 1e9)
            steady = sorted(d for s in streams for d, t in zip(s.delays, s.sent) if t >= ramp_end)
            ok = [s for s in streams if s.complete and s.saw_done and s.error is None and len(s.delays) == SSE_TOKENS + 2]
            errors = [s.error for s in streams if s.error]
            if errors:
                log(f"sse → {target}: {len(errors)} failed, e.g. {errors[0]}")
            nan = float("nan")
            rounds[target].append(dict(
                completed=len(ok), chunks=len(delays),
                p50=percentile(delays, 0.50) / 1e6 if delays else nan, p99=percentile(delays, 0.99) / 1e6 if delays else nan,
                max=delays[-1] / 1e6 if delays else nan,
                steady_p99=percentile(steady, 0.99) / 1e6 if steady else nan, steady_chunks=len(steady),
                cpu_us=spent / len(delays) * 1e6 if delays and pids() else None))
            time.sleep(1)  # let the proxies close what the streams left
    load_after = os.getloadavg()[0]
    stop(nginx)
    stop(chill)

    def median(target, key):
        values = [r[key] for r in rounds[target] if r[key] is not None]
        return statistics.median(values) if values else None

    out = [f"{SSE_STREAMS} concurrent SSE streams (POST /v1/chat/completions, stream: true), {SSE_TOKENS} tokens each at "
           f"{SSE_TOKENS_PER_SECOND:g} tokens/s (vllm-sim --chunk-timestamps), starts spread over one token interval "
           f"({interval * 1000:.0f} ms); per-chunk delay = arrival at the client (asyncio, time.monotonic_ns) − "
           f"vllm-sim's send instant (CLOCK_MONOTONIC), over every JSON event (role, tokens, finish); "
           f"median of {SSE_ROUNDS} interleaved round(s), {os.cpu_count()} cores",
           "",
           "| target           | streams completed (each round) | chunks/round | p50 ms | p99 ms | max ms | p99 ms after the ramp² | proxy CPU µs/chunk¹ |",
           "|------------------|-------------------------------:|-------------:|-------:|-------:|-------:|-----------------------:|--------------------:|"]
    for target in targets:
        counts = [r["completed"] for r in rounds[target]]
        completed = (f"{counts[0]} of {SSE_STREAMS}" + (f" ×{len(counts)}" if len(counts) > 1 else "")
                     if len(set(counts)) == 1 else "/".join(map(str, counts)) + f" of {SSE_STREAMS}")
        cpu = median(target, "cpu_us")
        out.append(f"| {LABELS[target]:<16} | {completed:>30} | {median(target, 'chunks'):12.0f} | "
                   f"{median(target, 'p50'):6.3f} | {median(target, 'p99'):6.3f} | {median(target, 'max'):6.1f} | "
                   f"{median(target, 'steady_p99'):22.3f} | "
                   f"{'-' if cpu is None else f'{cpu:.1f}':>19} |")
    out.append("")
    per_round = "; ".join(t + " " + "/".join(f"{r['p99']:.1f}" for r in rounds[t]) for t in targets)
    out.append(f"p99 ms in each round: {per_round} (1-min load average {load_before:.2f} before the rounds, "
               f"{load_after:.2f} after)")
    out.append("¹ utime+stime of the proxy over the round ÷ chunks relayed; includes accepting each stream's connection "
               "and opening one to vllm-sim per concurrent stream")
    out.append(f"² chunks vllm-sim sent more than {interval + SSE_RAMP_SECONDS:g} s after the first stream started "
               f"(about {median('direct', 'steady_chunks'):.0f} per round): the {SSE_STREAMS} connections are open and "
               f"every stream is past its first token")
    added = median("chill", "p99") - median("direct", "p99")
    nginx_added = median("nginx", "p99") - median("direct", "p99")
    all_done = all(r["completed"] == SSE_STREAMS for rs in rounds.values() for r in rs)
    out.append("")
    out.append(f"sse: chill p99 − direct p99 = {added:+.3f} ms (goal ≤ 1 ms: {'met' if added <= 1 else 'not met'}; "
               f"nginx {nginx_added:+.3f} ms); added p50 chill {median('chill', 'p50') - median('direct', 'p50'):+.3f} ms, "
               f"nginx {median('nginx', 'p50') - median('direct', 'p50'):+.3f} ms; after the ramp chill p99 − direct p99 "
               f"{median('chill', 'steady_p99') - median('direct', 'steady_p99'):+.3f} ms, "
               f"nginx {median('nginx', 'steady_p99') - median('direct', 'steady_p99'):+.3f} ms; all {SSE_STREAMS} streams completed "
               f"on every target in every round: {'yes' if all_done else 'NO'}")
    return out


# --- row: wake detection ---------------------------------------------------------------------------

def alive(pid):
    """Whether `pid` runs (a zombie waiting to be reaped does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def read_timing(path):
    events = {}
    with open(path) as f:
        for line in f:
            e = json.loads(line)
            events[e["event"]] = e
    return events


def wake_row():
    wakes = []
    for n in range(1, WAKES + 1):
        # Startups a fraction of the 50 ms probe interval apart, so the probes meet the socket's first
        # listening instant at evenly spread phases (a whole number of intervals would alias).
        startup = WAKE_STARTUP_SECONDS + 0.05 * (n - 1) / WAKES
        timing = os.path.join(work, f"wake-{n}.jsonl")
        chill, chill_port, _ = start_chill(f"wake-{n}", f"--startup-seconds {startup:.3f} --tokens-per-second 0 "
                                                         f"--max-tokens-default 1 --timing-log {timing}")
        time.sleep(0.2)
        log(f"wake {n}/{WAKES}: one request to the cold chill-server (vllm-sim --startup-seconds {startup:.3f})")
        sent = time.monotonic_ns()
        status, _ = http(f"http://127.0.0.1:{chill_port}/v1/chat/completions", CHAT, timeout=120)
        answered = time.monotonic_ns()
        e = read_timing(timing)
        stop(chill)
        sim_pid = e["listening"]["pid"]
        for _ in range(40):
            if not alive(sim_pid):
                break
            time.sleep(0.05)
        else:
            log(f"vllm-sim {sim_pid} outlived its chill-server by 2 s: SIGTERM")
            os.kill(sim_pid, signal.SIGTERM)
        if status != 200 or e["request"]["path"] != "/v1/chat/completions":
            raise RuntimeError(f"wake {n}: status {status}, first request to vllm-sim: {e['request']}")
        wakes.append(dict(listen_to_health=(e["health_200"]["ns"] - e["listening"]["ns"]) / 1e6,
                          health_to_request=(e["request"]["ns"] - e["health_200"]["ns"]) / 1e6,
                          listen_to_request=(e["request"]["ns"] - e["listening"]["ns"]) / 1e6,
                          client=(answered - sent) / 1e6))

    out = [f"wake detection: {WAKES} cold wakes, a fresh chill-server each (process backend, vllm-sim --startup-seconds "
           f"{WAKE_STARTUP_SECONDS:g}…{WAKE_STARTUP_SECONDS + 0.05 * (WAKES - 1) / WAKES:.3f} --timing-log), one chat completion "
           f"held during each; instants in vllm-sim's CLOCK_MONOTONIC",
           "",
           "| wake | listening → first /health 200 ms | first /health 200 → held request arrived ms | listening → held request ms | client: sent → answered ms |",
           "|-----:|---------------------------------:|--------------------------------------------:|----------------------------:|---------------------------:|"]
    for n, w in enumerate(wakes, 1):
        out.append(f"| {n:4d} | {w['listen_to_health']:32.1f} | {w['health_to_request']:43.2f} | {w['listen_to_request']:27.1f} | {w['client']:26.0f} |")
    h = [w["health_to_request"] for w in wakes]
    l = [w["listen_to_request"] for w in wakes]
    out.append("")
    out.append(f"wake: /health 200 → first held request forwarded: median {statistics.median(h):.2f} ms, max {max(h):.2f} ms "
               f"(goal ≤ 50 ms: {'met' if max(h) <= 50 else 'not met'}); counted from the socket listening (adds the wait for "
               f"the next 50 ms probe): median {statistics.median(l):.1f} ms, max {max(l):.1f} ms "
               f"({'within' if max(l) <= 50 else 'over'} 50 ms)")
    return out


# --- row: no growth over many requests ----------------------------------------------------------------

def growth_row():
    if GROWTH_REQUESTS <= 0:
        return ["growth: not run (GROWTH_REQUESTS=1000000 bench/run.sh runs it: chill-server's RSS after warm-up and "
                "after 1,000,000 more requests; goal: no growth)"]
    chill, chill_port, _ = start_chill("growth", "--tokens-per-second 0 --max-tokens-default 1")
    wake(chill_port)
    script = write_script("growth-chat", CHAT)
    log(f"growth: warm-up, wrk chat → chill ({CONNECTIONS} connections, {GROWTH_WARMUP})")
    warm = parse_wrk(wrk(chill_port, script, THREADS, CONNECTIONS, GROWTH_WARMUP))
    time.sleep(1)
    rss_before = rss_mb(chill.pid)
    total, errors, trail = 0, warm["errors"], []
    started = time.time()
    while total < GROWTH_REQUESTS:
        figures = parse_wrk(wrk(chill_port, script, THREADS, CONNECTIONS, GROWTH_STEP))
        total += figures["requests"]
        errors += figures["errors"]
        trail.append(rss_mb(chill.pid))
        log(f"growth: {total} requests, RSS {trail[-1]:.1f} MB")
    elapsed = time.time() - started
    time.sleep(1)
    rss_end = rss_mb(chill.pid)
    stats = json.loads(http(f"http://127.0.0.1:{chill_port}/proxy/stats")[1])
    stop(chill)
    diff = rss_end - rss_before
    return [f"growth: chill-server RSS after a {warm['requests']}-request warm-up and after {total} more proxied requests "
            f"(wrk -t{THREADS} -c{CONNECTIONS} chat, {len(trail)} runs of {GROWTH_STEP}, {elapsed:.0f} s; {errors} errors; "
            f"{stats['state']}, {stats['wakes']['count']} wake(s))",
            "",
            "| point                         | requests | RSS MB |",
            "|-------------------------------|---------:|-------:|",
            f"| after warm-up                 | {0:8d} | {rss_before:6.1f} |",
            f"| after the requests (+1 s)     | {total:8d} | {rss_end:6.1f} |",
            "",
            f"growth: {round(diff * 1000):+d} kB over {total} requests (goal: no growth — {'met' if diff <= 1 else 'not met'}, "
            f"within 1 MB); RSS after each run: {', '.join(f'{r:.1f}' for r in trail)} MB"]


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # room for the idle-connection and SSE rows
    sections = []
    if CASES:
        sections.append(throughput_table())
    for row, run in (("sse", sse_row), ("wake", wake_row), ("growth", growth_row)):
        if row in ROWS:
            try:
                sections.append(run())
            except Exception as error:  # one failed row must not lose the others
                sections.append([f"{row}: failed: {error!r}"])
    for lines in sections:
        print()
        for line in lines:
            print(line)


if __name__ == "__main__":
    try:
        main()
    finally:
        stop_all()
        subprocess.run(["rm", "-rf", work])
