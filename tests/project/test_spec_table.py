"""The spec bench's arithmetic (bench/spec.py) and s.yaml's spec: valid FC specs, CU from the cited factors."""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml

from bench import spec
from tests.conftest import ROOT


def test_valid_memories_follow_fc_rules() -> None:
    # 128 MB up in 64 MB steps, vCPU:GB from 1:1 to 1:4.
    assert spec.valid_memories(0.05) == [128, 192]
    assert spec.valid_memories(0.35) == list(range(384, 1409, 64))
    assert spec.valid_memories(1) == list(range(1024, 4097, 64))


@pytest.mark.parametrize("text", ["0.07", "0", "16.05", "0.35,0.33"])
def test_only_fc_cpu_steps_are_accepted(text: str) -> None:
    with pytest.raises(SystemExit):
        spec.parse_specs(text)


def test_parse_specs_keeps_the_given_order() -> None:
    assert spec.parse_specs("0.05,0.35,1") == [0.05, 0.35, 1.0]


def test_cost_of_1000_answers_from_the_cited_factors() -> None:
    row = spec.Cost(cpu=0.05, memory_mb=128, wall_s=6.0, tokens_cny=0.0007)
    assert row.vcpu_s == pytest.approx(300.0)  # 0.05 vCPU x 6 s x 1,000
    assert row.gb_s == pytest.approx(750.0)  # 0.125 GB x 6 s x 1,000
    assert row.disk_gb_s == pytest.approx(3000.0)  # 0.5 GB x 6 s x 1,000
    assert row.cu == pytest.approx(300 + 750 * 0.15 + 3000 * 0.05 + 7.5)
    assert row.fc_cny == pytest.approx(row.cu * 0.00011)
    assert row.total_cny == pytest.approx(row.fc_cny + 0.7)


def test_holding_the_peak_leaves_headroom() -> None:
    assert spec.holds(128, 96.0)
    assert not spec.holds(128, 97.0)


def test_s_yaml_ships_a_valid_fc_spec() -> None:
    props = yaml.safe_load((ROOT / "s.yaml").read_text())["resources"]["qwen"]["props"]
    assert props["memorySize"] in spec.valid_memories(props["cpu"])


def test_a_batch_shares_one_invocation_and_its_wall_time() -> None:
    single = spec.Cost(cpu=0.05, memory_mb=192, wall_s=6.0, tokens_cny=0.0, batch_wall_s=6.0 * spec.BATCH)
    # BATCH answers in BATCH times the wall: the same compute, 1/BATCH of the invocations.
    assert single.batch_fc_cny == pytest.approx(single.fc_cny - (1000 - 1000 / spec.BATCH) * 75 / 10_000 * 0.00011)
    assert math.isnan(spec.Cost(cpu=0.05, memory_mb=192, wall_s=6.0, tokens_cny=0.0).batch_fc_cny)  # not measured


def test_without_root_no_quota_is_tried(mocker: Any) -> None:
    mocker.patch.object(spec.os, "geteuid", return_value=1000)
    quota = mocker.patch.object(spec, "Quota")
    assert "root" in (spec.quota_unavailable() or "")
    quota.assert_not_called()


def test_where_no_quota_can_be_set_the_run_says_so_and_skips(mocker: Any, capsys: Any) -> None:
    mocker.patch.object(spec.os, "geteuid", return_value=0)
    mocker.patch.object(spec, "Quota", side_effect=OSError("no cpu controller"))
    venv = mocker.patch.object(spec.run, "venv")
    assert spec.main(["--cpu", "0.05"]) == 0
    assert "no CPU quota can be set on this machine (cannot create a cgroup" in capsys.readouterr().out
    venv.assert_not_called()  # nothing built, nothing measured
