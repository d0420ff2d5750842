"""Stand-ins, on 127.0.0.1, for the places notices go: a group robot webhook (WeCom or
DingTalk: both take a JSON POST and answer ``{"errcode": 0}``) and an SMTP server. Each runs
in a thread of the test and keeps what it received; nothing leaves the machine."""

from __future__ import annotations

import base64
import json
import socketserver
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    query: dict[str, str]
    body: dict[str, Any]


@dataclass
class Robot:
    """A webhook; ``answers`` is the list of (status, JSON body) it gives in turn, the last
    repeated: e.g. [(500, {}), (200, {"errcode": 0})] fails once, then takes everything."""

    answers: list[tuple[int, dict[str, Any]]] = field(
        default_factory=lambda: [(200, {"errcode": 0, "errmsg": "ok"})]
    )
    received: list[Received] = field(default_factory=list)
    url: str = ""


@contextmanager
def robot(answers: list[tuple[int, dict[str, Any]]] | None = None) -> Iterator[Robot]:
    state = Robot(answers) if answers else Robot()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length", 0))
            parts = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parts.query))
            state.received.append(Received(parts.path, query, json.loads(self.rfile.read(length))))
            status, answer = state.answers[min(len(state.received), len(state.answers)) - 1]
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_port}/cgi-bin/webhook/send?key=robot-key-1234"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class Mailbox:
    """What the SMTP stand-in received: each message, with its envelope and the login."""

    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    """Enough of SMTP (RFC 5321) for smtplib: EHLO with AUTH PLAIN, MAIL, RCPT, DATA, QUIT."""
    box = Mailbox()

    class Handler(socketserver.StreamRequestHandler):
        def reply(self, line: str) -> None:
            self.wfile.write(line.encode() + b"\r\n")

        def handle(self) -> None:
            self.reply("220 127.0.0.1 test SMTP")
            sender, recipients = "", []
            while line := self.rfile.readline():
                command = line.decode().strip()
                verb = command.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    self.reply("250-127.0.0.1")
                    self.reply("250 AUTH PLAIN")
                elif verb == "AUTH":
                    _nothing, user, password = base64.b64decode(command.split()[2]).split(b"\0")
                    box.logins.append((user.decode(), password.decode()))
                    self.reply("235 2.7.0 Authentication successful")
                elif verb == "MAIL":
                    sender, recipients = command[10:].strip("<> "), []
                    self.reply("250 OK")
                elif verb == "RCPT":
                    recipients.append(command[8:].strip("<> "))
                    self.reply("250 OK")
                elif verb == "DATA":
                    self.reply("354 End data with <CR><LF>.<CR><LF>")
                    data = b""
                    while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                        data += chunk[1:] if chunk.startswith(b"..") else chunk
                    box.messages.append(message_from_bytes(data, policy=policy.default))  # type: ignore[arg-type]
                    box.envelopes.append((sender, recipients))
                    self.reply("250 OK queued")
                elif verb == "QUIT":
                    self.reply("221 Bye")
                    return
                else:
                    self.reply("250 OK")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    box.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
