"""A TCP listener on a loopback address that records the first bytes of each connection and
answers an HTTP request with a fixed JSON body: what the CLI sends, seen from the other end."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

ANSWER = b'{"id": "r1", "backupId": "b1", "items": [], "nextToken": null}'


@dataclass
class Listener:
    host: str
    port: int
    received: list[bytes] = field(default_factory=list)

    def url(self, scheme: str) -> str:
        return f"{scheme}://{self.host}:{self.port}"


def _serve(server: socket.socket, listener: Listener) -> None:
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            first = conn.recv(65536)
            listener.received.append(first)
            if first.startswith((b"GET ", b"POST ")):
                body = ANSWER
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )


def listen(host: str) -> Iterator[Listener]:
    server = socket.socket()
    server.bind((host, 0))
    server.listen()
    listener = Listener(host, server.getsockname()[1])
    thread = threading.Thread(target=_serve, args=(server, listener), daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        server.shutdown(socket.SHUT_RDWR)  # wakes the accept()
        server.close()
        thread.join()
