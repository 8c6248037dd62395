"""Identifiers that must be unique, not secret: event ids, trace ids and span ids.

``uuid.uuid4()`` and ``secrets`` read the operating system's entropy on every call: a system
call per published event, where the publishing thread also gives up the GIL to the client's
batch threads (measured: a tenth of a publish). A Mersenne Twister seeded from the operating
system gives ids just as unique. Not the ``random`` module's own generator: tests seed it
(``random.seed``, hypothesis), and ids repeated across runs would make consumers drop new events
as duplicates. A forked child seeds its generator again, or it would repeat its parent's ids.
"""

from __future__ import annotations

import os
import random

_generator = random.Random()  # seeded from os.urandom
os.register_at_fork(after_in_child=_generator.seed)

getrandbits = _generator.getrandbits

# Version 4, variant RFC 4122: the bits uuid.UUID(int=..., version=4) sets and clears.
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_SET = (0x4000 << 64) | (0x8000 << 48)


def uuid4() -> str:
    """A random UUID (version 4) in its canonical text form, like ``str(uuid.uuid4())``."""
    text = f"{getrandbits(128) & _CLEAR | _SET:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def hex_id(bits: int) -> str:
    """``bits`` random bits as lower-case hex, never all zeros (invalid in W3C trace context)."""
    return f"{getrandbits(bits) or 1:0{bits // 4}x}"
