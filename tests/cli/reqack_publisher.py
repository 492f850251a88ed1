#!/usr/bin/env python3
"""A REQACK publisher for fleetcast's broker test, written apart from
fleetcast with Qpid Proton's Python binding: it follows the file of REQACK
lines an emulator writes and publishes each line, as it comes, to a queue
of a real AMQP 1.0 broker (RabbitMQ: the address /queue/NAME declares it),
each as one message whose body is the line's bytes. A message is sent again
until the broker accepts it, across reconnects.

usage: reqack_publisher.py SRC HOST PORT CA_FILE VHOST QUEUE USER PASSWORD STOP_FILE
(CA_FILE "-": plain TCP, no TLS)
Prints "attached" once its link is up, and "published N" when STOP_FILE
appears and everything read so far is accepted.
"""
import os
import sys

from proton import Message, SSLDomain
from proton.handlers import MessagingHandler
from proton.reactor import Container

src, host, port, ca, vhost, queue, user, password, stop_file = sys.argv[1:10]


class Publisher(MessagingHandler):
    def __init__(self):
        super().__init__()
        self.file = open(src, "rb")
        self.pending = b""
        self.lines = []        # read, not yet accepted (sent again after a reconnect)
        self.next = 0          # the next line of self.lines to send on this link
        self.accepted = 0
        self.sender = None
        self.said_attached = False

    def on_start(self, event):
        tls = {}
        if ca != "-":
            domain = SSLDomain(SSLDomain.MODE_CLIENT)
            domain.set_trusted_ca_db(ca)
            domain.set_peer_authentication(SSLDomain.VERIFY_PEER)
            tls = {"ssl_domain": domain}
        scheme = "amqp" if ca == "-" else "amqps"
        conn = event.container.connect(f"{scheme}://{host}:{port}", user=user, password=password,
                                       virtual_host=vhost, allowed_mechs="PLAIN",
                                       allow_insecure_mechs=True, sasl_enabled=True, **tls)
        self.sender = event.container.create_sender(conn, f"/queue/{queue}")
        event.container.schedule(0.02, self)

    def on_link_opened(self, event):
        if event.link == self.sender and not self.said_attached:
            self.said_attached = True
            print("attached", flush=True)

    def on_disconnected(self, event):
        self.next = 0  # what was not accepted goes out again on the next link

    def on_timer_task(self, event):
        chunk = self.file.read(1 << 20)
        if chunk:
            self.pending += chunk
            *whole, self.pending = self.pending.split(b"\n")
            self.lines.extend(line for line in whole if line)
        self.send()
        if os.path.exists(stop_file) and not chunk and self.next == len(self.lines) and \
                self.accepted_all():
            print(f"published {self.accepted}", flush=True)
            event.container.stop()
            return
        event.container.schedule(0.02, self)

    def accepted_all(self):
        return all(d is None for d in self.lines[:self.next])

    def on_sendable(self, event):
        self.send()

    def send(self):
        if not self.sender:
            return
        while self.next < len(self.lines) and self.sender.credit > 0:
            line = self.lines[self.next]
            if line is not None:
                delivery = self.sender.send(Message(body=line))
                delivery.index = self.next
            self.next += 1

    def on_accepted(self, event):
        i = getattr(event.delivery, "index", None)
        if i is not None and self.lines[i] is not None:
            self.lines[i] = None
            self.accepted += 1


Container(Publisher()).run()
