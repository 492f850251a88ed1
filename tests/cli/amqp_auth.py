#!/usr/bin/env python3
"""An authentication backend for RabbitMQ's rabbitmq_auth_backend_http, for
fleetcast's broker test: it checks each login as the platform documents it.
The username must be
  ver=1&auth_mode=accessKey&sign_method=sha256&access_key=<KEY>&timestamp=<ms>
with KEY the expected AccessKey and the timestamp within 10 minutes of now,
and the password the lowercase hex SHA-256 of the username followed by the
AccessSecret. Other users (the test's publisher) log in with their own
password. Every other question (vhost, resource, topic) is allowed.

usage: amqp_auth.py PORT_FILE LOG_FILE ACCESS_KEY SECRET_FILE PUBLISHER PUBLISHER_PASSWORD
Each login decision is a line in LOG_FILE: "allow USERNAME" or "deny USERNAME why".
"""
import hashlib
import http.server
import os
import sys
import threading
import time
import urllib.parse

port_file, log_file, access_key, secret_file, publisher, publisher_password = sys.argv[1:7]
lock = threading.Lock()
authenticated = set()  # RabbitMQ asks again without the password: an authorisation only


def log(line):
    with lock, open(log_file, "a") as f:
        f.write(line + "\n")


def check(user, password):
    if user == publisher:
        return None if password == publisher_password else "wrong publisher password"
    fields = dict(pair.split("=", 1) for pair in user.split("&") if "=" in pair)
    want = ["ver", "auth_mode", "sign_method", "access_key", "timestamp"]
    if list(fields) != want or user.count("&") != 4:
        return "not the documented username form"
    if fields["ver"] != "1" or fields["auth_mode"] != "accessKey" or fields["sign_method"] != "sha256":
        return "wrong ver, auth_mode or sign_method"
    if fields["access_key"] != access_key:
        return "unknown AccessKey"
    if abs(int(fields["timestamp"]) - time.time() * 1000) > 10 * 60 * 1000:
        return "timestamp not within 10 minutes"
    secret = open(secret_file).read().strip()
    if password != hashlib.sha256((user + secret).encode()).hexdigest():
        return "wrong password (SHA-256 of username + AccessSecret)"
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        q = {k: v[0] for k, v in urllib.parse.parse_qs(self.rfile.read(n).decode()).items()}
        answer = "allow"
        if self.path.endswith("/user") and "password" not in q:
            if q.get("username", "") not in authenticated:
                answer = "deny"
        elif self.path.endswith("/user"):
            why = check(q.get("username", ""), q.get("password", ""))
            if not why:
                with lock:
                    authenticated.add(q.get("username", ""))
            if why:
                answer = "deny"
                log(f"deny {q.get('username', '')} {why}")
            else:
                log(f"allow {q.get('username', '')}")
        body = answer.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


server = Server(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(f"{server.server_address[1]}\n")
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
