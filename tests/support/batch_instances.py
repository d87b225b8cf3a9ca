"""FC instances for the Batch API route (handler/deliver/batch_jobs.py, batch_collect.py) as separate processes.

The test side: the environment, a `.jsonl` upload over the real-time limit, the collect timer, and what the
stand-ins count (batch creates and batch uploads at DashScope's, PUTs of the answer file at OSS's).

The child side, `python -m tests.support.batch_instances`: tests/support/fc_instance.py with seams the test
chooses through BATCH_TEST_HOOKS (JSON), so two instances can be made to overlap and one can die at a chosen
point, as FC's instances do (killed at their timeout, or their host lost):
  barrier: folder, barrier_at: "submit" | "collect"
                         the first submit (or collect) waits until `parties` (2) instances have reached it,
                         so the instances start it together whatever their imports cost
  slow_create: s         sleep before each batch create (the submitting instance holds its marker that long)
  slow_answer_file: s    sleep before the collector writes the answer file it has built (holding its marker)
  exit_after_journal     die (os._exit) once the submit has stored its jobs' journal: jobs made, no job record yet
  exit_after_answer_file die once the answer file `<key>.jsonl` is written, before anything else
  exit_before_done       die when the collector is about to mark the job record done
The hooks live here, not in handler/: the function itself has no test seams.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any

from tests.support.events import oss_event, oss_record
from tests.support.instances import Instance, instance_env

BUCKET = "qwen-bulk"
MODULE = "tests.support.batch_instances"
HOOKS = "BATCH_TEST_HOOKS"
DIED = 86  # the exit status of a hook's os._exit: the test tells a chosen death from a crash by it
CREATE = "POST /compatible-mode/v1/batches"
UPLOAD = "POST /compatible-mode/v1/files"
COLLECT = json.dumps(
    {"triggerTime": "2026-12-06T18:00:00Z", "triggerName": "collect", "payload": '{"collect": "batches"}'}
)


# -- the test side ------------------------------------------------------------------------------------------


def batch_env(standin: Any, oss: Any, **hooks: Any) -> dict[str, str]:
    """An instance's environment: the bulk bucket listed, two models allowed, these hooks set in the child."""
    return instance_env(
        standin,
        oss,
        QWEN_OSS_BUCKETS=BUCKET,
        QWEN_ALLOWED_MODELS="qwen-turbo,qwen-plus",
        **{HOOKS: json.dumps(hooks)},
    )


def start(standin: Any, oss: Any, **hooks: Any) -> Instance:
    return Instance(batch_env(standin, oss, **hooks), module=MODULE)


def questions(n: int) -> bytes:
    return "".join(json.dumps(f"问题 {i}", ensure_ascii=False) + "\n" for i in range(1, n + 1)).encode()


def upload(oss: Any, key: str, lines: int = 21) -> tuple[str, str]:
    """Put a `.jsonl` file of `lines` questions (over the real-time limit of 20): its OSS event and eTag."""
    data = questions(lines)
    etag = oss.put(BUCKET, key, data).etag.upper()
    return oss_event(oss_record(key, bucket=BUCKET, etag=etag, size=len(data))), etag


def creates(standin: Any) -> int:
    return standin.batches.counts[CREATE]


def uploads(standin: Any) -> int:
    return standin.batches.counts[UPLOAD]


def finish(standin: Any) -> None:
    """Move every job at DashScope's stand-in to its end (it moves one state per retrieve)."""
    for job_id in list(standin.batches.jobs):
        for _ in range(6):
            if standin.batches.retrieve(job_id)[1]["status"] in ("completed", "failed", "expired", "cancelled"):
                break


def stored_json(oss: Any, key: str) -> Any:
    stored = oss.get(BUCKET, key)
    assert stored is not None, f"nothing at oss://{BUCKET}/{key}"
    return json.loads(stored.data)


def record(oss: Any, key: str, etag: str) -> dict[str, Any]:
    """The job record's output (its envelope is once.py's)."""
    return stored_json(oss, f"answers/.batches/{key}@{etag}.json")["output"]


def answer_puts(oss: Any, key: str) -> int:
    """Successful PUTs of the answer file `answers/<key>.jsonl` at the OSS stand-in."""
    return oss.writes[(BUCKET, f"answers/{key}.jsonl")]


def died(instance: Instance, timeout: float = 30) -> int:
    """Wait for an instance a hook killed; its exit status (no reply line was written)."""
    try:
        return instance.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("the instance was meant to die and did not") from None


def events(*replies: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [line for reply in replies for line in reply["logs"] if line["event"] == name]


# -- the child side ------------------------------------------------------------------------------------------


def _die() -> None:
    os._exit(DIED)


def _meet(folder: str, parties: int) -> None:
    """Wait until `parties` processes have arrived at this folder (each leaves a file named by its pid)."""
    open(os.path.join(folder, str(os.getpid())), "w").close()
    deadline = time.monotonic() + 20
    while len(os.listdir(folder)) < parties:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the other instances never reached the barrier at {folder}")
        time.sleep(0.01)


def _install(hooks: dict[str, Any]) -> None:
    if hooks.get("barrier"):
        _barrier(hooks)
    _submit_hooks(hooks)
    _collect_hooks(hooks)


def _barrier(hooks: dict[str, Any]) -> None:
    from handler.deliver import batch_collect, batch_jobs

    module, name = (batch_collect, "collect") if hooks.get("barrier_at") == "collect" else (batch_jobs, "submit")
    entry = getattr(module, name)  # looked up by name at each call (app.py, jsonl_files.py): replaceable here
    met: list[bool] = []

    def together(*args: Any, **kwargs: Any) -> Any:
        if not met:
            met.append(True)
            _meet(hooks["barrier"], int(hooks.get("parties", 2)))
        return entry(*args, **kwargs)

    setattr(module, name, together)


def _submit_hooks(hooks: dict[str, Any]) -> None:
    from handler.ask.batches import DashScopeBatches
    from handler.deliver.store import Oss2Store

    create = DashScopeBatches.create

    def hooked_create(self: Any, *args: Any, **kwargs: Any) -> Any:
        time.sleep(float(hooks.get("slow_create", 0)))
        return create(self, *args, **kwargs)

    DashScopeBatches.create = hooked_create  # type: ignore[method-assign]

    write = Oss2Store.write

    def hooked_write(self: Oss2Store, bucket: str, key: str, data: bytes, **kwargs: Any) -> None:
        write(self, bucket, key, data, **kwargs)
        if key.endswith(".jobs.json") and hooks.get("exit_after_journal"):
            _die()

    Oss2Store.write = hooked_write  # type: ignore[method-assign]


def _collect_hooks(hooks: dict[str, Any]) -> None:
    from handler.deliver import batch_collect
    from handler.deliver.jsonl_files import JsonlFileAnswers

    put = JsonlFileAnswers.put_if_absent

    def hooked_put(self: JsonlFileAnswers, key: str, stored: Any) -> bool:
        if key == self.answer:
            time.sleep(float(hooks.get("slow_answer_file", 0)))
        created = put(self, key, stored)
        if key == self.answer and hooks.get("exit_after_answer_file"):
            _die()
        return created

    JsonlFileAnswers.put_if_absent = hooked_put  # type: ignore[method-assign]

    retries = batch_collect.with_retries  # in batch_collect, only the record's "done" write goes through it

    def hooked_retries(*args: Any, **kwargs: Any) -> Any:
        if hooks.get("exit_before_done"):
            _die()
        return retries(*args, **kwargs)

    batch_collect.with_retries = hooked_retries  # type: ignore[assignment]


def main() -> None:
    from tests.support import fc_instance

    _install(json.loads(os.environ.get(HOOKS) or "{}"))
    fc_instance.main()


if __name__ == "__main__":
    main()
