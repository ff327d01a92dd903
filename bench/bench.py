#!/usr/bin/env python3
"""The benchmark driver behind bench/run.sh (which builds the binaries and installs wrk and nginx).

One vllm-sim, three targets in front of it: direct, chill-server (process backend, model awake) and
nginx (proxy_pass, keep-alive upstream). Rounds are interleaved — every case against every target,
then again — so a noisy neighbour hurts all targets alike; the table shows each figure's median over
the rounds. Besides wrk's req/s and latency, it reads the proxy's CPU time (utime+stime from
/proc/PID/stat, all nginx processes summed) over each measured run and divides by the requests
served: the steadiest figure on shared machines.
"""
import json, os, re, resource, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request

ENV = os.environ
BIN = sys.argv[1]
NGINX = sys.argv[2]
ROUNDS = int(ENV.get("ROUNDS", "3"))
CONNECTIONS = int(ENV.get("CONNECTIONS", "64"))
THREADS = int(ENV.get("THREADS", "2"))
DURATION = ENV.get("DURATION", "10s")
WARMUP = ENV.get("WARMUP", "2s")
STREAM_TOKENS = int(ENV.get("STREAM_TOKENS", "16"))
CASES = ENV.get("CASES", "chat stream chat-1c").split()
MODEL = "bench"
IDLE_CONNECTIONS = int(ENV.get("IDLE_CONNECTIONS", "10000"))
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


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # room for the idle-connection row
    sim_port, chill_port, nginx_port = free_port(), free_port(), free_port()
    log(f"chill-server :{chill_port} (process backend) → vllm-sim :{sim_port}")
    sim_command = f"{BIN}/vllm-sim --port {sim_port} --served-model-name {MODEL} --tokens-per-second 0 --max-tokens-default 1 --quiet"
    chill = start([f"{BIN}/chill-server", "--backend", "process", "--host", "127.0.0.1", "--port", str(chill_port),
                   "--target-port", str(sim_port), "--served-model-name", MODEL, "--idle-timeout", "1h",
                   "--log-level", "warning", "--log-file", os.path.join(work, "backend.log"), "--command", sim_command], "chill")
    wait_http(f"http://127.0.0.1:{chill_port}/health", "chill-server")
    time.sleep(0.5)
    rss_idle = rss_mb(chill.pid)
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    http(f"http://127.0.0.1:{chill_port}/v1/chat/completions", chat)  # wakes the model
    stats = json.loads(http(f"http://127.0.0.1:{chill_port}/proxy/stats")[1])
    if stats["state"] != "Ready":
        sys.exit(f"chill-server is {stats['state']}, not Ready")

    log(f"nginx :{nginx_port} → vllm-sim :{sim_port} (keepalive upstream)")
    ngx = os.path.join(work, "nginx")
    for d in ("logs", "tmp"):
        os.makedirs(os.path.join(ngx, d), exist_ok=True)
    with open(os.path.join(ngx, "nginx.conf"), "w") as f:
        f.write(f"""worker_processes auto;
pid {ngx}/nginx.pid;
error_log {ngx}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {ngx}/tmp/body;
  proxy_temp_path {ngx}/tmp/proxy;
  fastcgi_temp_path {ngx}/tmp/fastcgi;
  uwsgi_temp_path {ngx}/tmp/uwsgi;
  scgi_temp_path {ngx}/tmp/scgi;
  upstream vllm {{ server 127.0.0.1:{sim_port}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{nginx_port};
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
    nginx = start([NGINX, "-p", ngx, "-c", f"{ngx}/nginx.conf", "-g", "daemon off;"], "nginx")
    wait_http(f"http://127.0.0.1:{nginx_port}/health", "nginx")

    scripts = {}
    for name, body in (("chat", chat), ("stream", dict(chat, max_tokens=STREAM_TOKENS, stream=True))):
        scripts[name] = os.path.join(work, f"{name}.lua")
        with open(scripts[name], "w") as f:
            f.write(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = \'{json.dumps(body)}\'\n')

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

    def median(case, target, key):
        values = [r[key] for r in results[(case, target)] if r[key] is not None]
        return statistics.median(values) if values else None

    print()
    print(f"wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION} (chat-1c: -t1 -c1), POST /v1/chat/completions, "
          f"vllm-sim --tokens-per-second 0, {os.cpu_count()} cores, median of {ROUNDS} interleaved rounds")
    print(f"chat: 1 token, non-streaming; stream: {STREAM_TOKENS} tokens as SSE. "
          f"chill-server after the run: {stats['state']}, {stats['wakes']['count']} wake(s)")
    print()
    print("| case      | target           |      req/s |  p50 ms |  p99 ms | errors | proxy CPU µs/req |")
    print("|-----------|------------------|-----------:|--------:|--------:|-------:|-----------------:|")
    labels = {"direct": "vllm-sim direct", "chill": "chill-server", "nginx": "nginx proxy_pass"}
    for case in CASES:
        for target in targets:
            cpu = median(case, target, "cpu_us")
            errors = sum(r["errors"] for r in results[(case, target)])
            print(f"| {case:<9} | {labels[target]:<16} | {median(case, target, 'rps'):10.0f} | {median(case, target, 'p50'):7.3f} | "
                  f"{median(case, target, 'p99'):7.3f} | {errors:6d} | {'-' if cpu is None else f'{cpu:.1f}':>16} |")
    print()
    for case in CASES:
        d50, c50, n50 = (median(case, t, "p50") for t in ("direct", "chill", "nginx"))
        d99, c99, n99 = (median(case, t, "p99") for t in ("direct", "chill", "nginx"))
        ratio = median(case, "chill", "rps") / median(case, "nginx", "rps")
        ccpu, ncpu = median(case, "chill", "cpu_us"), median(case, "nginx", "cpu_us")
        cpu_ratio = f"{ccpu / ncpu:.2f}×" if ccpu and ncpu else "-"
        print(f"{case}: throughput chill/nginx {ratio:.2f}×, CPU per request chill/nginx {cpu_ratio}; "
              f"added p50 chill {1000 * (c50 - d50):+.0f} µs, nginx {1000 * (n50 - d50):+.0f} µs; "
              f"added p99 chill {1000 * (c99 - d99):+.0f} µs, nginx {1000 * (n99 - d99):+.0f} µs")
    print()
    print(f"chill-server RSS: {rss_idle:.1f} MB idle (before the first wake), {rss_after:.1f} MB after the run, "
          f"{rss_idle_connections:.1f} MB holding {idle_opened} idle client connections")


try:
    main()
finally:
    stop_all()
    subprocess.run(["rm", "-rf", work])
