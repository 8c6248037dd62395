"""``pubsub-kit dev`` keeps each function on its port when consumers are added."""

from __future__ import annotations

import json
from pathlib import Path

from shared import Consumer, Topic, Topology
from shared.system.events import PostLiked
from shared.tools.dev import LocalSystem
from shared.tools.ports import stable_offsets


def test_a_new_name_takes_the_next_free_offset_and_the_others_keep_theirs(tmp_path) -> None:
    saved = tmp_path / "ports.json"
    assert stable_offsets(["beta", "delta"], saved) == {"beta": 0, "delta": 1}
    # "alpha" sorts first: consecutive ports in name order would move beta and delta.
    assert stable_offsets(["alpha", "beta", "delta"], saved) == {"alpha": 2, "beta": 0, "delta": 1}
    assert json.loads(saved.read_text()) == {"offsets": {"alpha": 2, "beta": 0, "delta": 1}}


def test_a_name_removed_keeps_its_offset_for_when_it_comes_back(tmp_path) -> None:
    saved = tmp_path / "ports.json"
    stable_offsets(["alpha", "beta"], saved)
    assert stable_offsets(["beta", "gamma"], saved) == {"beta": 1, "gamma": 2}
    assert stable_offsets(["alpha", "beta", "gamma"], saved)["alpha"] == 0


def test_an_unreadable_or_hand_broken_file_is_started_afresh(tmp_path) -> None:
    saved = tmp_path / "nested" / "ports.json"
    saved.parent.mkdir()
    saved.write_text("{not json")
    assert stable_offsets(["alpha", "beta"], saved) == {"alpha": 0, "beta": 1}
    saved.write_text(json.dumps({"offsets": {"alpha": 0, "beta": 0, "gamma": -1, "delta": "x"}}))
    assert stable_offsets(["alpha", "beta", "gamma"], saved) == {"alpha": 0, "beta": 1, "gamma": 2}


def test_local_system_ports_follow_the_map(tmp_path: Path) -> None:
    def topology(*names: str) -> Topology:
        return Topology(
            topics=[Topic("likes", events=[PostLiked])],
            consumers=[Consumer(name, topics=["likes"]) for name in names],
        )

    def ports(*names: str) -> dict[str, int]:
        system = LocalSystem(
            topology(*names),
            project="p",
            store_url="sqlite:///:memory:",
            port_base=9100,
            functions_dir=tmp_path,
            port_map=tmp_path / "ports.json",
        )
        return {name: fn.port for name, fn in system.functions.items()}

    assert ports("beta_fn", "delta_fn") == {"beta_fn": 9100, "delta_fn": 9101}
    assert ports("alpha_fn", "beta_fn", "delta_fn") == {
        "alpha_fn": 9102,
        "beta_fn": 9100,
        "delta_fn": 9101,
    }
