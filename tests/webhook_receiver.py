"""A webhook receiver for tests: a small threaded HTTP server on 127.0.0.1 that keeps every
request it gets and answers as the test tells it."""

import contextlib
import http.server
import threading
import time


class Received:
    """One request as the receiver got it."""

    def __init__(self, path, headers, body):
        self.path = path
        self.headers = headers
        self.body = body

    @property
    def id(self):
        return self.headers["webhook-id"]


class Receiver:
    """Answers each POST with the next of ``answers`` (``(status, headers)`` or ``(status,
    headers, body)``; ``("raw", bytes)``: those bytes as the whole answer; ``"stall"``:
    hold the request until ``release`` is set; ``"trickle"``: a 200 whose body starts and
    then stalls so), then with what ``answer_for(received)`` says (204 by default)."""

    def __init__(self):
        self.received = []
        self.answers = []
        self.answer_for = lambda received: (204, {})
        self.arrived = threading.Condition()
        self.release = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                got = Received(self.path, headers, body)
                with receiver.arrived:
                    answer = receiver.answers.pop(0) if receiver.answers else None
                    receiver.received.append(got)
                    receiver.arrived.notify_all()
                if answer is None:
                    answer = receiver.answer_for(got)
                if answer == "stall":
                    receiver.release.wait(30)
                    return
                if answer == "trickle":
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(b"2\r\nok\r\n")
                    self.wfile.flush()
                    receiver.release.wait(30)
                    return
                if answer[0] == "raw":
                    self.wfile.write(answer[1])
                    self.close_connection = True
                    return
                status, extra, *body = answer
                payload = body[0] if body else b""
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def wait_for(self, count, timeout=20):
        """The requests received, once there are at least ``count`` (fails past ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.received)} of {count} requests arrived")
                self.arrived.wait(left)
            return list(self.received)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        with contextlib.suppress(RuntimeError):
            self.thread.join(5)
