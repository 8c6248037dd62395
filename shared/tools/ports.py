"""Local TCP ports: pick free ones, tell whether one is taken and by whom, keep them stable."""

from __future__ import annotations

import itertools
import json
import os
import socket
import tempfile
from collections.abc import Iterable
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


def stable_offsets(names: Iterable[str], path: Path) -> dict[str, int]:
    """Each name's offset from the port base, kept in ``path`` so that it holds across runs.

    A name seen before keeps its offset; a new one takes the lowest offset nobody holds. So
    adding a consumer never moves another function to a new port (consecutive ports in name
    order would shift every function after it), and a consumer removed and added again gets its
    port back. The file is JSON, ``{"offsets": {"audit_log": 0, ...}}``, replaced atomically; an
    unreadable one is started afresh.
    """
    known = _read_offsets(path)
    wanted = list(dict.fromkeys(names))
    taken = set(known.values())
    for name in wanted:
        if name not in known:
            known[name] = next(n for n in itertools.count() if n not in taken)
            taken.add(known[name])
    document = {"offsets": dict(sorted(known.items()))}
    if _read_offsets(path) != known:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as file:
            json.dump(document, file, indent=2)
            file.write("\n")
        os.replace(temp, path)
    return {name: known[name] for name in wanted}


def _read_offsets(path: Path) -> dict[str, int]:
    """The offsets saved in ``path``; none when it is missing or not what we wrote."""
    try:
        saved = json.loads(path.read_text()).get("offsets", {})
    except (OSError, ValueError, AttributeError):
        return {}
    offsets: dict[str, int] = {}
    for name, offset in saved.items() if isinstance(saved, dict) else ():
        # A hand-edited file may repeat an offset: the later name is assigned afresh.
        if isinstance(offset, int) and offset >= 0 and offset not in offsets.values():
            offsets[name] = offset
    return offsets
