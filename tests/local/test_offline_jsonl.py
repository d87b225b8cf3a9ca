"""`python -m handler --offline --oss-file FILE.jsonl` runs the whole route: a small file answered in real
time, a file above QWEN_JSONL_REALTIME_MAX_LINES submitted to the Batch API's stand-in and collected by
the collect timer's event until the answer file is written, which is printed."""

from __future__ import annotations

import json

from tests.support.processes import run_cli as run


def _answers(stdout: bytes) -> list[dict]:
    return [json.loads(line) for line in stdout.decode().splitlines() if line.strip()]


def test_a_file_above_the_realtime_limit_is_submitted_collected_and_printed(tmp_path):
    path = tmp_path / "many.jsonl"
    path.write_text("\n".join(json.dumps(f"问题 {n}", ensure_ascii=False) for n in range(1, 26)), encoding="utf-8")
    done = run("--offline", "--oss-file", str(path))
    assert done.returncode == 0, done.stderr
    answers = _answers(done.stdout)
    assert [a["custom_id"] for a in answers] == [str(n) for n in range(1, 26)]
    assert all(a["status_code"] == 200 and a["output"]["choices"] for a in answers)
    said = done.stderr.decode()
    assert '"batch_submitted"' in said and "1 submission(s) collected" in said


def test_the_collect_timers_sample_event_runs_offline():
    done = run("--offline", "--event-file", "events/timer-collect.json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["code"] == "BatchesCollected" and result["output"] == {"collected": [], "running": 0, "failed": []}
