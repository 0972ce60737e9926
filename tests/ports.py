"""Ports on 127.0.0.1 for the servers the tests start (Dagster, Ray nodes)."""

from __future__ import annotations

import socket


def free_ports(count: int = 1) -> list[int]:
    """`count` distinct ports free right now. Another process may take one before the server binds it
    (seen: a Ray runtime-env agent failed with "Address already in use"), so fixtures that start a
    server retry on fresh ports when it dies."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
