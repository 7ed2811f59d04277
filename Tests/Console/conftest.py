"""A running Fulcrum (serve --store) with two counting backends, and a headless Chromium (Debian's)
driven by Playwright, for the web console's end-to-end tests."""
import http.client
import json
import os
import pathlib
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import sync_playwright

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCREENSHOTS = pathlib.Path(os.environ.get("FULCRUM_SCREENSHOTS", ROOT / "console-screenshots"))
ADMIN_SECRET = "fulcrum_console_test_admin_0123456789"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Backend:
    """An HTTP server that answers with its name and counts the requests it gets (but health probes)."""

    def __init__(self, name):
        self.name, self.hits, backend = name, 0, self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                if self.path != "/":  # "/" is the health check's
                    backend.hits += 1
                body = (backend.name + "\n").encode()
                self.send_response(200)
                self.send_header("X-Backend", backend.name)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


class Fulcrum:
    def __init__(self, binary, directory):
        self.a, self.b = Backend("a"), Backend("b")
        # a certificate 20 days from its end, which the overview must show as expiring soon
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "20",
                        "-subj", "/CN=console.test", "-addext", "subjectAltName=DNS:console.test",
                        "-keyout", str(directory / "site.key"), "-out", str(directory / "site.pem")], check=True, capture_output=True)
        # A port chosen by binding to 0 and closing can be taken again by someone else before Fulcrum
        # binds it; such a start is retried with new ports, any other failure ends with the server's log.
        for attempt in range(3):
            if self.start(binary, directory):
                break
            if attempt == 2 or "ddress already in use" not in self.log_text:
                raise RuntimeError("fulcrum did not start:\n" + self.log_text)
        self.viewer_secret = self.api("POST", "/tokens", {"name": "watcher", "role": "viewer"})[1]["secret"]
        self.url = f"http://127.0.0.1:{self.admin_port}/console/"

    def start(self, binary, directory):
        """Starts Fulcrum on fresh ports; true once its admin API answers, false if it exited or never did."""
        self.proxy_port, self.admin_port, self.tls_port = free_port(), free_port(), free_port()
        config = directory / "fulcrum.yaml"
        config.write_text(f"""
listen:
  - {{ address: 127.0.0.1, port: {self.proxy_port} }}
  - {{ address: 127.0.0.1, port: {self.tls_port}, tls: {{ certificates: [{{ cert: {directory}/site.pem, key: {directory}/site.key }}] }} }}
access_log: false
services:
  web:
    health_check: {{ type: http, path: /, interval: 1s, timeout: 500ms }}
    nodes:
      - {{ name: a, host: 127.0.0.1, port: {self.a.port} }}
      - {{ name: b, host: 127.0.0.1, port: {self.b.port} }}
routes:
  - {{ name: api, match: {{ path_prefix: /api/ }}, service: web }}
default: {{ service: web }}
""")
        (directory / "fulcrum.db").unlink(missing_ok=True)
        self.log_path = directory / "fulcrum.log"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [binary, "serve", "-c", str(config), "--store", str(directory / "fulcrum.db"),
             "--admin", f"127.0.0.1:{self.admin_port}", "--log-level", "warning"],
            env=dict(os.environ, FULCRUM_ADMIN_TOKEN=ADMIN_SECRET), stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if self.api("GET", "/health")[0] == 200:
                    return True
            except OSError:
                time.sleep(0.05)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.log.close()
        self.log_text = self.log_path.read_text()
        return False

    def api(self, method, path, body=None, token=ADMIN_SECRET, if_match=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=10)
        headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
        if if_match:
            headers["If-Match"] = if_match
        connection.request(method, "/api/v1" + path, body=None if body is None else json.dumps(body), headers=headers)
        reply = connection.getresponse()
        data = reply.read()
        connection.close()
        return reply.status, (json.loads(data) if data else None)

    def request(self, path):
        """A GET through the data plane; returns its status and the backend's name."""
        connection = http.client.HTTPConnection("127.0.0.1", self.proxy_port, timeout=10)
        connection.request("GET", path)
        reply = connection.getresponse()
        reply.read()
        connection.close()
        return reply.status, reply.getheader("X-Backend")

    def get(self, path):
        """The name of the backend that answered a request through the data plane."""
        return self.request(path)[1]

    def status(self, path):
        """The status of a request through the data plane."""
        return self.request(path)[0]

    def served_subject(self, name):
        """The subject of the certificate the TLS listener presents for `name` (None when refused)."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with socket.create_connection(("127.0.0.1", self.tls_port), timeout=5) as raw:
                with context.wrap_socket(raw, server_hostname=name) as tls:
                    der = tls.getpeercert(binary_form=True)
        except ssl.SSLError:
            return None
        text = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject", "-nameopt", "RFC2253"],
                              input=der, capture_output=True, check=True).stdout.decode()
        return "CN = " + text.strip().removeprefix("subject=").removeprefix("CN=")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
        self.a.stop()
        self.b.stop()


@pytest.fixture(scope="session")
def binary():
    path = os.environ.get("FULCRUM_BIN")
    if path:
        return path
    bin_dir = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    return os.path.join(bin_dir, "fulcrum")


@pytest.fixture
def fulcrum(binary):
    with tempfile.TemporaryDirectory(prefix="fulcrum-console-") as directory:
        server = Fulcrum(binary, pathlib.Path(directory))
        yield server
        server.stop()


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh page whose console errors and uncaught exceptions fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.set_default_timeout(10_000)
    yield page
    # taken before the page closes: closing it aborts the requests still in flight (the overview's
    # refresh, a form's dry run), whose "Failed to fetch" says nothing about the console
    # 401/403/409/412/422 answers the tests provoke are logged by Chromium as failed loads; they are expected.
    unexpected = [p for p in problems if "Failed to load resource" not in p]
    context.close()
    assert unexpected == [], unexpected


def screenshot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page, fulcrum, secret=ADMIN_SECRET):
    page.goto(fulcrum.url)
    page.fill("#token", secret)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#page:not([hidden])")


def wait_until(condition, timeout=15.0, what="condition"):
    """Polls `condition` from Python (the console's CSP forbids the page-side eval of wait_for_function)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def confirm_change(page, message="console test"):
    page.wait_for_selector("#dialog[open] #change-message")
    page.fill("#change-message", message)
    page.click("#confirm-change")
