#!/usr/bin/env python3
"""Propagation across a fleet (run by bench/cluster.sh): three `fulcrum serve` instances on one
PostgreSQL database (a server of Debian's package started here in a temporary directory), wrk
keeping every instance's data plane busy (4 connections each, to a small backend of this script),
and CHANGES changes made through the first instance's admin API, one after another. For each
change, the time from the first instance's answer until each other instance's admin API reports
the new version (which it does once the data plane serves it; polled every millisecond), the
summary (median, p99, max per instance), and wrk's requests, errors and non-2xx answers.

    bench/cluster.sh                # 100 changes (builds the release binary if needed)
    CHANGES=300 bench/cluster.sh
"""
import http.client
import http.server
import json
import re
import threading
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = os.environ.get("FULCRUM_BIN", str(ROOT / ".build/release/fulcrum"))
CHANGES = int(os.environ.get("CHANGES", "100"))
TOKEN = "fleet_bench_token_0123456789abcdef"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args, **kwargs):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)


def start_postgres(directory):
    bin_dir = max(pathlib.Path("/usr/lib/postgresql").iterdir(), key=lambda p: int(p.name)) / "bin"
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
    shutil.chown(directory, "postgres", "postgres") if os.getuid() == 0 else None
    run(*as_postgres, str(bin_dir / "initdb"), "-D", f"{directory}/data", "-A", "trust", "-U", "fulcrum", "--no-sync")
    port = free_port()
    subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", f"{directory}/data", "-l", f"{directory}/server.log", "-w",
                    "-o", f"-p {port} -k {directory} -c listen_addresses=127.0.0.1", "start"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run(str(bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "fulcrum", "-d", "postgres", "-q", "-c", "CREATE DATABASE fleet")
    stop = [*as_postgres, str(bin_dir / "pg_ctl"), "-D", f"{directory}/data", "-m", "fast", "stop"]
    return f"postgres://fulcrum@127.0.0.1:{port}/fleet?sslmode=disable", stop


def api(port, method, path, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Authorization": "Bearer " + TOKEN, "If-Match": "*", "Content-Type": "application/json"}
    connection.request(method, "/api/v1" + path, body=None if body is None else json.dumps(body), headers=headers)
    reply = connection.getresponse()
    data = reply.read()
    connection.close()
    return reply.status, json.loads(data) if data else None


class Backend(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *args):
        pass


def main():
    if not os.path.exists(BIN):
        subprocess.run(["swift", "build", "-c", "release", "--product", "fulcrum"], cwd=ROOT, check=True)
    directory = tempfile.mkdtemp(prefix="fulcrum-fleet-")
    os.chmod(directory, 0o755)
    url, stop_postgres = start_postgres(directory)
    config = pathlib.Path(directory) / "fulcrum.yaml"
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    config.write_text("listen: [{ address: 127.0.0.1, port: 0 }]\naccess_log: false\n"
                      f"services: {{ web: {{ nodes: [{{ name: a, host: 127.0.0.1, port: {backend.server_address[1]}, weight: 1 }}] }} }}\n"
                      "default: { service: web }\n")
    instances = []
    try:
        for index in range(3):
            port = free_port()
            log = open(f"{directory}/fulcrum-{index}.log", "w")
            process = subprocess.Popen([BIN, "serve", "--store", url, "--admin", f"127.0.0.1:{port}", "--log-level", "warning"]
                                       + (["-c", str(config)] if index == 0 else []),
                                       env=dict(os.environ, FULCRUM_ADMIN_TOKEN=TOKEN), stdout=subprocess.DEVNULL, stderr=log)
            instances.append((process, port))
            for _ in range(300):
                try:
                    if api(port, "GET", "/health")[0] == 200:
                        break
                except OSError:
                    time.sleep(0.02)
        # every instance's data plane, from the instances view (each listens on a port of its own)
        for _ in range(100):
            items = api(instances[0][1], "GET", "/instances")[1]["items"]
            if len(items) == 3:
                break
            time.sleep(0.1)
        planes = [address for item in items for address in item["listen"]]
        load = [subprocess.Popen(["wrk", "-t1", "-c4", f"-d{max(10, CHANGES // 5)}s", f"http://{address}/"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for address in planes]
        time.sleep(1)
        delays = {1: [], 2: []}
        for change in range(CHANGES):
            status, reply = api(instances[0][1], "PATCH", "/services/web/nodes/a", {"weight": 2 + change % 50})
            assert status == 200, (status, reply)
            answered = time.monotonic()
            version = reply["version"]["number"]
            for other in (1, 2):
                while api(instances[other][1], "GET", "/config")[1]["number"] < version:
                    time.sleep(0.001)
                delays[other].append(time.monotonic() - answered)
        outputs = [process.communicate()[0] for process in load]
        print(f"{CHANGES} changes through instance 0; time until the others' admin API reports the new version:")
        for other, values in delays.items():
            values.sort()
            p = lambda q: values[min(len(values) - 1, int(q * len(values)))] * 1000
            print(f"  instance {other}: median {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {values[-1] * 1000:.1f} ms")
        failed = 0
        for address, output in zip(planes, outputs):
            requests = int(re.search(r"(\d+) requests in", output).group(1))
            errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
            non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", output)) else 0
            failed += errors + non2xx
            print(f"  wrk through {address}: {requests} requests, socket errors {errors}, non-2xx {non2xx}")
        print(f"  failed proxied requests: {failed}")
    finally:
        backend.shutdown()
        for process, _ in instances:
            process.terminate()
            process.wait(10)
        subprocess.run(stop_postgres, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
