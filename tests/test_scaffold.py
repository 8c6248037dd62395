"""``shared.tools.scaffold``: the topology entry goes into the list as a person would add it."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

from shared.tools.scaffold import add_consumer_entry, new_consumer

ENTRY = 'Consumer("greeter", topics=["t"])'


def source(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (  # empty: one element a line from now on
            """
            T = Topology(topics=[], consumers=[])
            """,
            """
            T = Topology(topics=[], consumers=[
                Consumer("greeter", topics=["t"]),
            ])
            """,
        ),
        (  # one a line, trailing comma
            """
            T = Topology(
                topics=[],
                consumers=[
                    Consumer("a_one", topics=["t"]),  # the first
                ],
            )
            """,
            """
            T = Topology(
                topics=[],
                consumers=[
                    Consumer("a_one", topics=["t"]),  # the first
                    Consumer("greeter", topics=["t"]),
                ],
            )
            """,
        ),
        (  # one a line, no trailing comma
            """
            T = Topology(
                topics=[],
                consumers=[
                    Consumer("a_one", topics=["t"])
                ],
            )
            """,
            """
            T = Topology(
                topics=[],
                consumers=[
                    Consumer("a_one", topics=["t"]),
                    Consumer("greeter", topics=["t"]),
                ],
            )
            """,
        ),
        (  # all on one line
            """
            T: Topology = Topology(topics=[], consumers=[Consumer("a_one", topics=[])])
            """,
            """
            T: Topology = Topology(topics=[], consumers=[Consumer("a_one", topics=[]), C("g")])
            """,
        ),
    ],
)
def test_the_entry_is_appended_to_the_list_in_its_style(before: str, after: str) -> None:
    prelude = "from shared import Consumer, Topology\n\n"
    entry = 'C("g")' if "C(" in after else ENTRY
    assert add_consumer_entry(prelude + source(before), "T", entry) == prelude + source(after)


def test_consumer_is_imported_when_the_module_has_no_such_name() -> None:
    text = source(
        """
        \"\"\"Doc.\"\"\"

        from shared import Topic, Topology

        from app.events import Made

        T = Topology(topics=[Topic("t", events=[Made])], consumers=[])
        """
    )
    edited = add_consumer_entry(text, "T", ENTRY)
    assert edited is not None
    assert "from shared import Consumer, Topic, Topology\n" in edited
    without_shared = add_consumer_entry(
        text.replace("from shared import", "from x import"), "T", ENTRY
    )
    assert without_shared is not None
    assert "from app.events import Made\nfrom shared import Consumer\n" in without_shared


@pytest.mark.parametrize(
    "text",
    [
        "T = Topology(topics=[], consumers=CONSUMERS)\n",  # not a list literal
        "T = make_topology()\n",  # no consumers keyword
        "OTHER = Topology(topics=[], consumers=[])\n",  # another name
        "def f():\n    T = Topology(topics=[], consumers=[])\n",  # not at the top level
    ],
)
def test_no_list_it_can_edit_safely_gives_none(text: str) -> None:
    assert add_consumer_entry(text, "T", ENTRY) is None


def test_the_handler_takes_the_newest_version_unless_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """post-liked carries v1 and v2 with an upcaster from v1: a new handler is written for v2."""
    root = tmp_path / "proj"
    (root / "functions").mkdir(parents=True)
    (root / "likes").mkdir()
    (root / "likes" / "__init__.py").write_text("")
    (root / "likes" / "topology.py").write_text(
        "from shared.system.topology import TOPOLOGY as EXAMPLE\n"
        "from shared.topology import Consumer, Topology\n\n"
        "TOPOLOGY = Topology(\n"
        "    topics=EXAMPLE.topics.values(),\n"
        "    consumers=[],\n"
        "    upcasters=EXAMPLE.upcasters.values(),\n"
        ")\n"
    )
    monkeypatch.syspath_prepend(str(root))
    importlib.import_module("likes.topology")  # as the CLI loads it: new_consumer edits its file

    try:
        spec = "likes.topology:TOPOLOGY"
        topology = sys.modules["likes.topology"].TOPOLOGY
        new_consumer(root, spec, topology, "like_counter", "post-liked")
        main = (root / "functions" / "like_counter" / "main.py").read_text()
        assert "def like_counter(event: PostLikedV2, delivery: Delivery)" in main
        new_consumer(root, spec, topology, "v1_reader", "post-liked", event="post.liked.v1")
        main = (root / "functions" / "v1_reader" / "main.py").read_text()
        assert "def v1_reader(event: PostLiked, delivery: Delivery)" in main
        assert "from shared.system.events import PostLiked\n" in main
    finally:
        for name in ("likes", "likes.topology"):
            sys.modules.pop(name, None)
