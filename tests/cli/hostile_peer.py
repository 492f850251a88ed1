#!/usr/bin/env python3
"""Hostile peers for fleetcast's tests, written apart from fleetcast: an API
server (batchControlDevice and the refresh endpoint) and an HTTP CONNECT
proxy that echo secrets, send huge or invalid text, or stall.

usage: hostile_peer.py PORT_FILE api [--echo] [--refuse] [--refresh MODE]
       hostile_peer.py PORT_FILE proxy --status MODE

api: every device of a request succeeds (a ticket each) but the first,
  which fails. --echo: the answer's msg, every ticket and the failure's msg
  carry the request's Authorization value. --refuse: every request is
  answered 5032 (token refused), so fleetcast renews its token. --refresh:
  what PUT /v2/enduser/enduserapi/refreshToken answers: echo (5032, the
  refresh token and the Authorization in msg), huge (5032 with 900 KB of
  msg), stall (never answers), bad-token (200 with a usable access token
  and a refresh token that no request can carry).
proxy: CONNECT is answered with a status line: echo (407, the
  Proxy-Authorization value and its decoded user:password in the reason),
  huge (502, 7,000 bytes of reason), invalid (502, raw bytes that are not
  UTF-8), stall (never answers).

The port is written to PORT_FILE once listening; each event ("echoed",
"stalled", ...) is a line on standard output, so that a test can tell the
hostile thing happened.
"""
import base64
import http.server
import json
import socketserver
import sys
import threading
import time
import urllib.parse

events_lock = threading.Lock()


def event(text):
    with events_lock:
        print(text, flush=True)


def stall_forever(handler):
    event("stalled")
    try:
        while True:  # holds the connection open, says nothing
            time.sleep(3600)
    except Exception:
        pass


class Api(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    opts = {}

    def log_message(self, *args):
        pass

    def answer(self, obj, status=200):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        req = json.loads(self.rfile.read(n) or b"{}")
        auth = self.headers.get("Authorization", "")
        if self.opts.get("refuse"):
            event("refused")
            return self.answer({"code": 5032, "msg": "token failed verification", "data": None})
        devices = req.get("deviceList", [])
        echo = auth if self.opts.get("echo") else ""
        if echo:
            event("echoed")
        ok = [{"data": d, "ticket": f"t-{i}-{echo}"} for i, d in enumerate(devices) if i > 0]
        bad = [{"data": d, "msg": f"device offline {echo}"} for d in devices[:1]]
        self.answer({"code": 200, "msg": f"done {echo}", "extMsg": echo or None,
                     "data": {"successList": ok, "failureList": bad}})

    def do_PUT(self):
        mode = self.opts.get("refresh", "echo")
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        refresh = query.get("refreshToken", [""])[0]
        if mode == "stall":
            return stall_forever(self)
        if mode == "huge":
            event("huge")
            return self.answer({"code": 5032, "msg": "x" * (900 * 1024), "data": None})
        if mode == "bad-token":
            event("bad-token")
            return self.answer({"code": 200, "msg": "ok", "data": {
                "accessToken": {"token": "Bearer a-usable-new-access-token", "expirationTime": 2000000000},
                "refreshToken": {"token": "refresh\u0001broken", "expirationTime": 2000000000}}})
        event("echoed")
        return self.answer({"code": 5032, "data": None, "msg":
                            f"refresh token {refresh} and {self.headers.get('Authorization', '')} rejected"})


class Proxy(socketserver.StreamRequestHandler):
    mode = "echo"

    def handle(self):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.connection.recv(4096)
            if not chunk:
                return
            head += chunk
        lines = head.split(b"\r\n")
        creds = b""
        for line in lines[1:]:
            if line.lower().startswith(b"proxy-authorization:"):
                creds = line.split(b":", 1)[1].strip()
        if self.mode == "stall":
            return stall_forever(self)
        if self.mode == "echo":
            decoded = b""
            if creds.startswith(b"Basic "):
                decoded = base64.b64decode(creds[6:])
            reason = b"Proxy Authentication Required for " + creds + b" (" + decoded + b")"
            status = b"407"
            event("echoed")
        elif self.mode == "huge":
            reason, status = b"Bad Gateway " + b"y" * 7000, b"502"
            event("huge")
        else:  # invalid: obs-text that is not UTF-8
            reason, status = b"Bad \xff\xfe\xc3( Gateway \xe2\x82", b"502"
            event("invalid")
        self.connection.sendall(b"HTTP/1.1 " + status + b" " + reason +
                                b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class TcpServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    port_file, kind, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    opts = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("--echo", "--refuse"):
            opts[a[2:]] = True
        elif a in ("--refresh", "--status"):
            opts[a[2:]] = args[i + 1]
            i += 1
        else:
            sys.exit(f"hostile_peer: unknown argument {a}")
        i += 1
    if kind == "api":
        Api.opts = opts
        server = Server(("127.0.0.1", 0), Api)
    elif kind == "proxy":
        Proxy.mode = opts.get("status", "echo")
        server = TcpServer(("127.0.0.1", 0), Proxy)
    else:
        sys.exit(f"hostile_peer: unknown peer {kind}")
    with open(port_file + ".tmp", "w") as f:
        f.write(f"{server.server_address[1]}\n")
    import os
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
