"""A TCP proxy on loopback in front of a real server, for the faults no real component stages on demand.

- :meth:`FaultProxy.cut`: an outage; open connections are reset, new ones closed at once.
- :meth:`FaultProxy.hold`: a black hole; connections are accepted and requests read, nothing ever answers.
- :meth:`FaultProxy.delay`: every answer of the server leaves ``seconds`` late (a slow service).
- :meth:`FaultProxy.answer`: every request gets one canned HTTP response (throttling, a 500) instead of the
  server's; :func:`throttling` builds the one each AWS protocol uses.
- :meth:`FaultProxy.restore`: back to forwarding. Open connections that were cut or held stay dead; one that was
  answered is closed at its next request (the client reconnects, as after a server's idle close).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

PASS, CUT, HOLD, ANSWER = "pass", "cut", "hold", "answer"


class FaultProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target`` until told to fail (module docstring)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.mode = PASS
        self.latency_s = 0.0
        self._response = b""
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self.requests = 0  # requests answered by ``answer`` or swallowed by ``hold``
        threading.Thread(target=self._accept, name="fault-proxy", daemon=True).start()

    def cut(self) -> None:
        """The outage: open connections are reset, new ones are closed at once."""
        self.mode = CUT
        self._drop_open()

    def hold(self) -> None:
        """A black hole: open connections go silent, new ones are accepted and never answered."""
        self.mode = HOLD

    def delay(self, seconds: float) -> None:
        """Answers leave ``seconds`` late (requests pass at once)."""
        self.latency_s = seconds

    def answer(self, response: bytes) -> None:
        """Every request on a new connection gets ``response`` (open connections are reset first)."""
        self._response = response
        self.mode = ANSWER
        self._drop_open()

    def restore(self) -> None:
        self.mode = PASS
        self.latency_s = 0.0

    def close(self) -> None:
        self._closed.set()
        self.mode = CUT
        self._drop_open()
        self._listener.close()

    def _drop_open(self) -> None:
        with self._lock:
            for s in list(self._sockets):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._sockets.clear()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            mode = self.mode
            if mode == CUT:
                client.close()
                continue
            with self._lock:
                self._sockets.add(client)
            if mode in (HOLD, ANSWER):
                threading.Thread(target=self._serve, args=(client, mode), daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.add(upstream)
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, answers: bool) -> None:
        try:
            while data := source.recv(65536):
                if self.mode == HOLD:
                    while self.mode == HOLD and not self._closed.is_set():
                        time.sleep(0.05)  # a black hole: swallow, never forward
                    continue
                if answers and self.latency_s:
                    time.sleep(self.latency_s)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def _serve(self, client: socket.socket, mode: str) -> None:
        """Read HTTP requests off ``client``; swallow them (hold) or answer each with the canned response."""
        buffered = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffered:
                    data = client.recv(65536)
                    if not data:
                        return
                    buffered += data
                head, _, rest = buffered.partition(b"\r\n\r\n")
                length = _content_length(head)
                if b"expect: 100-continue" in head.lower() and len(rest) < length and mode == ANSWER:
                    client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                while len(rest) < length:
                    data = client.recv(65536)
                    if not data:
                        return
                    rest += data
                buffered = rest[length:]
                if self.mode != mode:  # restored (or changed) since: close, the client reconnects
                    return
                self.requests += 1
                if mode == HOLD:
                    while not self._closed.is_set() and self.mode == HOLD:
                        time.sleep(0.05)
                    return
                client.sendall(self._response)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                client.close()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def throttling(protocol: str) -> bytes:
    """The HTTP response an AWS service sends when it throttles, by wire protocol.

    ``json`` (DynamoDB, Kinesis): 400 ``ThrottlingException``; ``query`` (SNS): 400
    ``Throttling`` in XML; ``s3``: 503 ``SlowDown``.
    """
    if protocol == "json":
        body = b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}'
        return _http(400, "application/x-amz-json-1.0", body)
    if protocol == "query":
        body = (
            b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
            b"</Error><RequestId>fault-proxy</RequestId></ErrorResponse>"
        )
        return _http(400, "text/xml", body)
    body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
    return _http(503, "application/xml", body)


def server_error(status: int = 500) -> bytes:
    """A bare 5xx answer (an overloaded service)."""
    return _http(status, "text/plain", b"internal error")


def _http(status: int, content_type: str, body: bytes) -> bytes:
    reason = {400: "Bad Request", 500: "Internal Server Error", 503: "Service Unavailable"}.get(
        status, "Error"
    )
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        "x-amzn-RequestId: fault-proxy\r\n\r\n"
    )
    return head.encode() + body


@contextlib.contextmanager
def fault_proxy(host: str, port: int) -> Iterator[FaultProxy]:
    proxy = FaultProxy(host, port)
    try:
        yield proxy
    finally:
        proxy.close()
