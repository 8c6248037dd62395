"""Run as a script: load the audit_log function with functions-framework, as Cloud Functions
does, deliver one push to it, and print what the process loaded and answered, as JSON.

    python consume_once.py FUNCTION_DIR [TRACEPARENT]

The store comes from PUBSUB_KIT_STORE and telemetry from the environment, as in production.
"""

from __future__ import annotations

import base64
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import functions_framework

folder = Path(sys.argv[1])
sys.path[:0] = [str(folder)]
app = functions_framework.create_app(target="audit_log", source=str(folder / "main.py"))
imported = sorted(m for m in sys.modules if m.startswith("opentelemetry"))

from shared import wire  # noqa: E402 - measured what loading main.py imported first
from shared.system.events import PostLiked  # noqa: E402

event = PostLiked(
    post_id="p1", liker_id="u1", author_id="u2", liked_at=datetime(2026, 1, 31, 12, tzinfo=UTC)
)
traceparent = sys.argv[2] if len(sys.argv) > 2 else None
envelope = wire.new_envelope(event, source="/producer", event_id="e-1", traceparent=traceparent)
data, attributes = wire.encode(event, envelope)
body = {
    "message": {
        "data": base64.b64encode(data).decode(),
        "attributes": attributes,
        "messageId": "m-1",
        "publishTime": "2026-01-31T12:00:01Z",
    },
    "subscription": "projects/p/subscriptions/post-liked--audit_log",
    "deliveryAttempt": 1,
}
answer = app.test_client().post("/", json=body)
print(
    json.dumps(
        {
            "status": answer.status_code,
            "imported_by_main": imported,
            "imported_after_one_message": sorted(
                m for m in sys.modules if m.startswith("opentelemetry")
            ),
        }
    )
)
