"""A push whose connection drops after the commit, before the answer: the retry is a duplicate.

A real HTTP server on 127.0.0.1; the client sends the request and hangs up without reading.
"""

from __future__ import annotations

import json
import socket
import threading
import time

from werkzeug.serving import make_server


def test_a_retry_after_a_dropped_connection_stores_nothing_twice(app, county):
    a = county.device("cadre_a")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        ops = [a.visit(county.households["h1"]) for _ in range(5)]
        body = json.dumps({"device_id": a.device_id, "ops": ops}).encode()
        request = (
            f"POST /api/v1/sync/push HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {a.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=5) as sock:
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)  # hang up before the answer is read
        b = county.device("cadre_b")
        seen: list[str] = []
        for _ in range(100):  # the server finishes the request on its own
            seen += [r["id"] for r in b.pull_all() if r["type"] == "visit"]
            if len(seen) == 5:
                break
            time.sleep(0.05)
        assert sorted(seen) == sorted(op["id"] for op in ops)  # committed, answer never read
        retry = a.push(ops).get_json()
        assert [r["status"] for r in retry["results"]] == ["duplicate"] * 5
        assert [r for r in b.pull_all() if r["type"] == "visit"] == []
    finally:
        server.shutdown()
        thread.join(timeout=10)
