#!/usr/bin/env python3
"""Framing-level HTTP/2 client for Fulcrum's tests, on the Python `h2` package.

    h2client.py SCENARIO PORT [--tls CA_FILE SERVER_NAME] [ARGS...]

Prints one JSON object with what it saw. Scenarios:
  concurrent N       N GETs on concurrent streams of one connection
  reset-mid-body     a POST whose body is cut by RST_STREAM, then a GET on the same connection
  rapid-reset N      N streams opened and reset at once (CVE-2023-44487); stops at GOAWAY
  big-headers BYTES  a GET with one header of BYTES bytes
  header-crlf        a GET whose header value holds CR LF and a second header line
  stall PATH         a GET whose response is not read (no WINDOW_UPDATE) until told on stdin,
                     then read whole
"""
import json
import socket
import ssl
import sys

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings


def connect(port, tls):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if tls:
        ca, name = tls
        context = ssl.create_default_context(cafile=ca)
        context.set_alpn_protocols(["h2"])
        sock = context.wrap_socket(sock, server_hostname=name)
        if sock.selected_alpn_protocol() != "h2":
            raise SystemExit(json.dumps({"error": "ALPN did not select h2", "alpn": sock.selected_alpn_protocol()}))
    config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8", validate_outbound_headers=False,
                                       normalize_outbound_headers=False, validate_inbound_headers=False)
    conn = h2.connection.H2Connection(config=config)
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def request_headers(method, path, extra=()):
    return [(":method", method), (":path", path), (":scheme", "https"), (":authority", "localhost")] + list(extra)


class Collector:
    """Responses by stream, and how the connection ended."""

    def __init__(self, sock, conn, acknowledge=True):
        self.sock, self.conn, self.acknowledge = sock, conn, acknowledge
        self.responses, self.ended, self.resets = {}, set(), {}
        self.goaway = None
        self.closed = False
        self.timed_out = False
        # every byte received, to find a GOAWAY the h2 state machine refused to read; bytearrays,
        # which grow in place (bytes += bytes copied all so far for every frame: quadratic, and a
        # 64 MiB download took so long that the proxy's stall timeout cut it)
        self.raw = bytearray()

    def pump(self):
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            self.timed_out = True
            return
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        if not data:
            self.closed = True
            self.find_goaway()
            return
        self.raw.extend(data)
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            # frames after the server's GOAWAY, which the h2 state machine refuses
            self.closed = True
            self.find_goaway()
            return
        for event in events:
            if isinstance(event, h2.events.ResponseReceived):
                status = dict(event.headers)[":status"]
                entry = self.responses.setdefault(event.stream_id, {"status": None, "headers": {}, "body": bytearray()})
                entry["status"] = int(status)
                entry["headers"] = {k: v for k, v in event.headers}
            elif isinstance(event, h2.events.DataReceived):
                self.responses.setdefault(event.stream_id, {"status": None, "headers": {}, "body": bytearray()})["body"].extend(event.data)
                if self.acknowledge:
                    self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self.ended.add(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                self.resets[event.stream_id] = int(event.error_code)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.goaway = int(event.error_code)
        out = self.conn.data_to_send()
        if out:
            try:
                self.sock.sendall(out)
            except OSError:
                self.closed = True

    def find_goaway(self):
        """The error code of a GOAWAY frame among the frames received (the preface aside)."""
        at = 0
        while at + 9 <= len(self.raw):
            length = int.from_bytes(self.raw[at:at + 3], "big")
            kind = self.raw[at + 3]
            if kind == 7 and at + 9 + 8 <= len(self.raw):
                self.goaway = int.from_bytes(self.raw[at + 13:at + 17], "big")
            at += 9 + length

    def until(self, done, limit=2000):
        for _ in range(limit):
            if done() or self.closed:
                return
            self.pump()

    def summary(self, stream_id):
        entry = self.responses.get(stream_id)
        return {
            "status": entry["status"] if entry else None,
            "body": entry["body"].decode("utf-8", "replace")[:2000] if entry else "",
            "bytes": len(entry["body"]) if entry else 0,
            "headers": entry["headers"] if entry else {},
            "ended": stream_id in self.ended,
            "reset": self.resets.get(stream_id),
        }


def main():
    scenario, port = sys.argv[1], int(sys.argv[2])
    rest = sys.argv[3:]
    tls = None
    if rest[:1] == ["--tls"]:
        tls = (rest[1], rest[2])
        rest = rest[3:]
    sock, conn = connect(port, tls)
    result = {}
    if scenario == "concurrent":
        count = int(rest[0])
        c = Collector(sock, conn)
        ids = []
        for i in range(count):
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, request_headers("GET", f"/slow/50?n={i}"), end_stream=True)
            ids.append(sid)
        sock.sendall(conn.data_to_send())
        c.until(lambda: all(s in c.ended or s in c.resets for s in ids))
        result = {"streams": [c.summary(s) for s in ids], "goaway": c.goaway}
    elif scenario == "reset-mid-body":
        c = Collector(sock, conn)
        cut = conn.get_next_available_stream_id()
        conn.send_headers(cut, request_headers("POST", "/upload", [("content-length", "100000")]))
        conn.send_data(cut, b"x" * 1000)
        sock.sendall(conn.data_to_send())
        conn.reset_stream(cut, error_code=8)  # CANCEL
        after = conn.get_next_available_stream_id()
        conn.send_headers(after, request_headers("GET", "/after"), end_stream=True)
        sock.sendall(conn.data_to_send())
        c.until(lambda: after in c.ended or after in c.resets)
        result = {"after": c.summary(after), "goaway": c.goaway, "closed": c.closed}
    elif scenario == "rapid-reset":
        count = int(rest[0])
        c = Collector(sock, conn)
        sent = 0
        for _ in range(count):
            try:
                sid = conn.get_next_available_stream_id()
                conn.send_headers(sid, request_headers("GET", "/"))
                conn.reset_stream(sid, error_code=8)
                sock.sendall(conn.data_to_send())
            except Exception:
                break
            sent += 1
            if sent % 20 == 0:
                sock.settimeout(0.001)
                c.pump()
                sock.settimeout(10)
                if c.goaway is not None or c.closed:
                    break
        c.until(lambda: c.goaway is not None, limit=50)
        result = {"sent": sent, "goaway": c.goaway, "closed": c.closed}
    elif scenario == "big-headers":
        size = int(rest[0])
        c = Collector(sock, conn)
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, request_headers("GET", "/", [("x-big", "b" * size)]), end_stream=True)
        sock.sendall(conn.data_to_send())
        c.until(lambda: sid in c.ended or sid in c.resets or c.goaway is not None)
        result = {"stream": c.summary(sid), "goaway": c.goaway}
    elif scenario == "header-crlf":
        c = Collector(sock, conn)
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, request_headers("GET", "/", [("x-a", "1\r\nx-injected: yes")]), end_stream=True)
        sock.sendall(conn.data_to_send())
        c.until(lambda: sid in c.ended or sid in c.resets or c.goaway is not None)
        result = {"stream": c.summary(sid), "goaway": c.goaway}
    elif scenario == "stall":
        path = rest[0]
        c = Collector(sock, conn, acknowledge=False)
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, request_headers("GET", path), end_stream=True)
        sock.sendall(conn.data_to_send())
        sock.settimeout(0.2)
        for _ in range(10):
            c.pump()
        print(json.dumps({"stalled_at": c.summary(sid)["bytes"]}), flush=True)
        sys.stdin.readline()  # the test looks at the node meanwhile
        sock.settimeout(2)  # ends the read at a stall of 2 s
        c.acknowledge = True
        c.timed_out = False
        received = c.summary(sid)["bytes"]
        if received:
            conn.acknowledge_received_data(received, sid)
            sock.sendall(conn.data_to_send())
        c.until(lambda: sid in c.ended or sid in c.resets or c.timed_out, limit=10_000_000)
        summary = c.summary(sid)
        summary.pop("body")
        result = {"stream": summary}
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
