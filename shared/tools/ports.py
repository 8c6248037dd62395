"""Local TCP ports: pick free ones, tell whether one is taken, and by which process."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def free_ports(count: int = 1) -> list[int]:
    """``count`` distinct ports on 127.0.0.1 that nothing listens on right now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def holder(port: int) -> str | None:
    """``"pid 1234 (python -m functions_framework ...)"`` listening on ``port``, where Linux says.

    Read from /proc: the socket's inode in /proc/net/tcp{,6}, then the process with a file
    descriptor on it. ``None`` elsewhere, or for another user's process.
    """
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            links = {os.readlink(fd) for fd in (proc / "fd").iterdir()}
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue  # gone, or not ours to read
        if links & {f"socket:[{inode}]" for inode in inodes}:
            return f"pid {proc.name} ({command[:120]})"
    return None


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local address "0100007F:1F90", state 0A = LISTEN, inode in column 10
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
                inodes.add(fields[9])
    return inodes
