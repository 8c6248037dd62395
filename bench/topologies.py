"""The topologies the benchmarks provision, one per path so no path sees another's messages.

An event type belongs to one topic per topology, so each path that needs its own topic gets
its own :class:`~shared.Topology`. The HTTP functions under ``bench/functions/`` import these
too (``bench/`` is on their ``PYTHONPATH``).
"""

from __future__ import annotations

from shared import Consumer, FunctionSettings, Topic, Topology
from shared.system.events import PostLiked

# Publish: a topic with no subscription, so the emulator only accepts and discards.
PUBLISH = Topology(topics=[Topic("bench-publish", events=[PostLiked])])

# Consume: one topic, one subscription per path; a publish fills them all at once. Each round
# uses a renamed copy (``CONSUME.with_prefix``) so that every stream opens on a new subscription.
CONSUME = Topology(
    topics=[Topic("bench-consume", events=[PostLiked])],
    consumers=[
        # Only for its subscription: the raw library's streaming pull reads it.
        Consumer("raw_pull", topics=["bench-consume"], uses_store=False),
        Consumer("kit_store", topics=["bench-consume"]),
        Consumer("kit_store_full", topics=["bench-consume"]),
        Consumer("kit_nostore", topics=["bench-consume"], uses_store=False),
    ],
)

# Local HTTP delivery (and the catch-up after an outage). Both functions declare the same
# concurrency, 4 requests at once per instance: of 2, 4, 8 and 16 (one run each, 2 cores),
# 4 was the fastest for the toolkit function through LocalSystem and, with as many THREADS,
# for the bare function behind the emulator's push (at 1 that push stalls: 30 of 200 messages
# in 60 s, seen twice). LocalSystem gives each function as many request slots and THREADS;
# the bench gives the function behind the emulator's push the same THREADS.
HTTP_FUNCTION = FunctionSettings(concurrency=4)
# The toolkit's runtime serving a toolkit function ...
HTTP_KIT = Topology(
    topics=[Topic("bench-http-kit", events=[PostLiked])],
    consumers=[
        Consumer("bench_kit", topics=["bench-http-kit"], uses_store=False, function=HTTP_FUNCTION)
    ],
)
# ... the same runtime (pull loop + HTTP POST) feeding a bare functions-framework function ...
HTTP_BARE = Topology(
    topics=[Topic("bench-http-bare", events=[PostLiked])],
    consumers=[
        Consumer("bench_bare", topics=["bench-http-bare"], uses_store=False, function=HTTP_FUNCTION)
    ],
)
# ... and the emulator's own push to a bare function (the push subscription is made raw).
HTTP_PUSH = Topology(topics=[Topic("bench-http-push", events=[PostLiked])])
