"""`python -m handler batches`: the open Batch API submissions of the inbox buckets, and `--cancel` one.

A `.jsonl` file above QWEN_JSONL_REALTIME_MAX_LINES is submitted as batch jobs (handler/deliver/batch_jobs.py)
and listed in `<prefix>.batches/open.json` of its bucket until the collect timer writes its answers. This
command reads that list and each submission's record from the buckets of QWEN_OSS_BUCKETS (`--bucket` picks
one of them, never another), asks DashScope for each job's state (GET /batches/{id}), and with `--cancel`
cancels a submission's jobs (or one job by id); the collect timer then writes what was answered. The
configuration is the deployment's (the shell's over s.yaml's); OSS is read with the AccessKey (or STS token)
in ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET / ALIBABA_CLOUD_SECURITY_TOKEN, on the region's public endpoint.
`--offline` uses the local stand-ins (empty): no key, no network.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from handler.ask.batches import BatchJob, DashScopeBatches
from handler.ask.files import DashScopeFiles
from handler.config import Settings
from handler.deliver.batch_collect import OPEN
from handler.deliver.batch_jobs import record_key
from handler.deliver.store import ObjectStore, Oss2Store, endpoint_for, public_endpoint, shown_object
from handler.errors import InvalidConfig, ObjectNotFound, QwenError
from handler.fc_context import Credentials

REGION = "cn-hangzhou"  # s.yaml's region when FC_REGION is not set


class UsageError(Exception):
    """Configuration or arguments this command cannot run with: one line, exit status 2."""


@dataclass
class Job:
    id: str
    model: str
    lines: int
    state: BatchJob | None = None
    error: str | None = None  # why its state could not be read

    def as_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"id": self.id, "model": self.model, "lines": self.lines}
        if self.state is not None:
            state = self.state
            shown.update(status=state.status, total=state.total, completed=state.completed, failed=state.failed)
            if state.errors:
                shown["errors"] = list(state.errors)
        if self.error is not None:
            shown["error"] = self.error
        return shown


@dataclass
class Submission:
    bucket: str
    key: str
    etag: str
    lines: int | None = None
    refused: int | None = None
    submitted_at: float | None = None
    jobs: list[Job] = field(default_factory=list)
    error: str | None = None  # why its record could not be read

    def as_dict(self, now: float) -> dict[str, Any]:
        age = None if self.submitted_at is None else round(now - self.submitted_at)
        shown = {
            "bucket": self.bucket,
            "key": self.key,
            "etag": self.etag,
            "lines": self.lines,
            "refused": self.refused,
            "submitted_at": self.submitted_at,
            "age_seconds": age,
            "jobs": [job.as_dict() for job in self.jobs],
        }
        return shown if self.error is None else {**shown, "error": self.error}


@dataclass
class Sources:
    settings: Settings
    store: ObjectStore
    batches: DashScopeBatches
    buckets: list[str]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m handler batches",
        description="List the .jsonl files submitted to DashScope's Batch API and not collected yet (the open "
        "list of each QWEN_OSS_BUCKETS bucket), with each job's state; --cancel one.",
    )
    p.add_argument("--bucket", help="only this bucket (one of QWEN_OSS_BUCKETS; no other is read)")
    p.add_argument(
        "--cancel",
        metavar="KEY|JOB",
        help="cancel the jobs of this open submission (its object key, or key@eTag), or one job by its id; "
        "the collect timer then writes the lines answered and the rest with their error",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    p.add_argument("--offline", action="store_true", help="the local stand-ins (empty): no key, no network")
    p.add_argument(
        "--no-s-yaml", action="store_true", help="do not read s.yaml's environmentVariables: the shell's alone"
    )
    return p


def main(argv: Sequence[str], *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = parser().parse_args(argv)
    try:
        with _sources(args) as sources:
            if args.cancel is not None:
                return cancel(sources, args.cancel, as_json=args.json, out=out)
            return show(sources, as_json=args.json, out=out)
    except UsageError as error:
        print(error, file=sys.stderr)
        return 2


@contextlib.contextmanager
def _sources(args: argparse.Namespace) -> Iterator[Sources]:
    """The settings, OSS and DashScope clients and buckets the arguments name; offline, stand-ins for both."""
    with contextlib.ExitStack() as standins:
        env = _offline(standins) if args.offline else _environment(args.no_s_yaml)
        if not env.get("DASHSCOPE_API_KEY", "").strip():
            raise UsageError("DASHSCOPE_API_KEY is not set: export the key the function uses, or add --offline")
        try:
            settings = Settings.from_env(env)
        except InvalidConfig as error:
            raise UsageError(f"{error.code}: {error.message}") from None
        buckets = _buckets(settings, args.bucket)
        files = DashScopeFiles(settings.api_key, settings.base_url, connect_timeout=settings.connect_timeout)
        yield Sources(settings, _store(env, settings), DashScopeBatches(files), buckets)


def _environment(no_s_yaml: bool) -> dict[str, str]:
    from handler.local import deployed_env

    deployed = {} if no_s_yaml else deployed_env.variables()
    return {**deployed, **os.environ}


def _offline(standins: contextlib.ExitStack) -> dict[str, str]:
    """The environment of an offline run: both endpoints and every credential are the stand-ins'."""
    from handler.local.cli import OFFLINE_BUCKETS, OFFLINE_KEY, _bypass_proxies_for_loopback
    from handler.local.standin import DashScopeStandIn
    from handler.local.standin_oss import OssStandIn

    dashscope = DashScopeStandIn(api_key=OFFLINE_KEY).start()
    standins.callback(dashscope.stop)
    oss = OssStandIn().start()
    standins.callback(oss.stop)
    _bypass_proxies_for_loopback()  # a configured proxy must not carry requests meant for 127.0.0.1
    return {
        "DASHSCOPE_API_KEY": OFFLINE_KEY,
        "DASHSCOPE_HTTP_BASE_URL": dashscope.url,
        "QWEN_OSS_ENDPOINT": oss.url,
        "QWEN_OSS_BUCKETS": os.environ.get("QWEN_OSS_BUCKETS", "").strip() or OFFLINE_BUCKETS,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "offline-access-key",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "offline-secret-0000",
    }


def _buckets(settings: Settings, chosen: str | None) -> list[str]:
    configured = sorted(settings.oss_buckets)
    if not configured:
        raise UsageError(
            "QWEN_OSS_BUCKETS is not set: name the inbox bucket(s) the function answers (s.yaml's "
            "environmentVariables, or export QWEN_OSS_BUCKETS=...), or add --offline"
        )
    if chosen is None:
        return configured
    if chosen not in configured:
        # Only the function's own buckets are read: the command never goes where configuration does not.
        raise UsageError(f"--bucket {chosen} is not one of QWEN_OSS_BUCKETS ({', '.join(configured)})")
    return [chosen]


def _store(env: dict[str, str], settings: Settings) -> ObjectStore:
    key_id = env.get("ALIBABA_CLOUD_ACCESS_KEY_ID", "").strip()
    secret = env.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "").strip()
    if not key_id or not secret:
        raise UsageError(
            "ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET must be set (an AccessKey, or an STS "
            "token with ALIBABA_CLOUD_SECURITY_TOKEN, that may read <prefix>.batches/ of the bucket), or add --offline"
        )
    region = env.get("FC_REGION", "").strip() or REGION
    endpoint = endpoint_for(region, settings.oss_endpoint)
    if endpoint is None:
        raise UsageError(f"FC_REGION {region!r} is not a region name such as cn-hangzhou; or set QWEN_OSS_ENDPOINT")
    token = env.get("ALIBABA_CLOUD_SECURITY_TOKEN", "").strip() or None
    # This machine is rarely inside Alibaba Cloud's network: an internal endpoint is read through its public twin.
    return Oss2Store(Credentials(key_id, secret, token), public_endpoint(endpoint))


def show(sources: Sources, *, as_json: bool, out: TextIO) -> int:
    """Print the open submissions; 0 when every one was read, 1 when anything could not be."""
    found, failed = _gather(sources)
    if as_json:
        now = time.time()
        document = {"buckets": sources.buckets, "open": [s.as_dict(now) for s in found], "errors": failed}
        print(json.dumps(document, ensure_ascii=False, indent=2), file=out)
    else:
        for problem in failed:
            print(problem, file=sys.stderr)
        for submission in found:
            print(_row(submission), file=out)
        listed = ", ".join(sources.buckets)
        print(f"{len(found)} open submission(s) in {listed}" + ("" if found else ": nothing waiting"), file=out)
        if found:
            print("the collect timer writes each one's answers when its jobs finish; --cancel KEY stops one", file=out)
    unread = failed or [s for s in found if s.error or any(job.error for job in s.jobs)]
    return 1 if unread else 0


def cancel(sources: Sources, what: str, *, as_json: bool, out: TextIO) -> int:
    """Cancel the named submission's unfinished jobs (or the one job named); 1 when none matched or one failed."""
    found, failed = _gather(sources)
    named = [(s, job) for s in found for job in s.jobs if what in (s.key, f"{s.key}@{s.etag}", job.id)]
    if not named:
        for problem in failed:
            print(problem, file=sys.stderr)
        print(f"no open submission or job named {what} in {', '.join(sources.buckets)}", file=sys.stderr)
        return 1
    done = [_cancel_one(sources.batches, submission, job) for submission, job in named]
    if as_json:
        print(json.dumps({"cancel": done}, ensure_ascii=False, indent=2), file=out)
    else:
        for action in done:
            print(_action_row(action), file=out)
        if any(action["action"] == "cancelled" for action in done):
            print("the collect timer writes the lines answered, and the rest with batch_cancelled", file=out)
    return 1 if any(action["action"] == "failed" for action in done) else 0


def _cancel_one(batches: DashScopeBatches, submission: Submission, job: Job) -> dict[str, Any]:
    action: dict[str, Any] = {"bucket": submission.bucket, "key": submission.key, "etag": submission.etag}
    action["job"] = job.id
    if job.state is not None and job.state.finished:
        return {**action, "action": "finished", "status": job.state.status}
    try:
        state = batches.cancel(job.id)
    except (QwenError, ValueError) as error:
        return {**action, "action": "failed", "error": _said(error)}
    return {**action, "action": "cancelled", "status": state.status}


def _action_row(action: dict[str, Any]) -> str:
    where = f"{action['key']}@{action['etag']}"
    if action["action"] == "cancelled":
        return f"cancelled {action['job']} of {where}: {action['status']}"
    if action["action"] == "finished":
        return f"unchanged {action['job']} of {where}: already {action['status']}"
    return f"failed    {action['job']} of {where}: {action['error']}"


def _gather(sources: Sources) -> tuple[list[Submission], list[str]]:
    """Every open submission of the buckets, each job's state asked of DashScope; what could not be read."""
    found: list[Submission] = []
    failed: list[str] = []
    prefix = sources.settings.oss_output_prefix
    for bucket in sources.buckets:
        try:
            entries = _open_list(sources.store, bucket, prefix + OPEN)
        except QwenError as error:
            failed.append(f"cannot read {shown_object(bucket, prefix + OPEN)}: {_said(error)}")
            continue
        for entry in entries:
            key, _, etag = entry.rpartition("@")
            found.append(_submission(sources, bucket, key, etag))
    return found, failed


def _open_list(store: ObjectStore, bucket: str, where: str) -> list[str]:
    try:
        entries = json.loads(store.read(bucket, where, max_bytes=None).data)
    except ObjectNotFound:
        return []
    except ValueError:
        raise QwenError("not a JSON list", code="BadOpenList") from None
    return [entry for entry in entries if isinstance(entry, str)] if isinstance(entries, list) else []


def _submission(sources: Sources, bucket: str, key: str, etag: str) -> Submission:
    submission = Submission(bucket, key, etag)
    where = sources.settings.oss_output_prefix + record_key(key, etag)
    try:
        record = json.loads(sources.store.read(bucket, where, max_bytes=None).data).get("output") or {}
    except ObjectNotFound:
        submission.error = f"no record at {shown_object(bucket, where)} (collected meanwhile?)"
        return submission
    except (QwenError, ValueError, AttributeError) as error:
        submission.error = f"cannot read {shown_object(bucket, where)}: {_said(error)}"
        return submission
    submission.lines, submission.refused = record.get("lines"), record.get("refused")
    submitted = record.get("submitted_at")
    submission.submitted_at = float(submitted) if isinstance(submitted, (int, float)) else None
    for listed in record.get("jobs", []):
        job = Job(str(listed.get("id")), str(listed.get("model")), int(listed.get("lines") or 0))
        try:
            job.state = sources.batches.retrieve(job.id)
        except (QwenError, ValueError) as error:
            job.error = _said(error)
        submission.jobs.append(job)
    return submission


def _row(submission: Submission) -> str:
    head = f"{submission.bucket}  {submission.key}  eTag {submission.etag}"
    if submission.error is not None:
        return f"{head}  {submission.error}"
    when = "-"
    if submission.submitted_at is not None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(submission.submitted_at))
        when = f"{stamp} ({_age(time.time() - submission.submitted_at)} ago)"
    jobs = "; ".join(_job_text(job) for job in submission.jobs) or "no jobs"
    return f"{head}  {submission.lines} lines, {submission.refused} refused  submitted {when}  {jobs}"


def _job_text(job: Job) -> str:
    text = f"{job.id} {job.model} {job.lines} lines"
    if job.error is not None:
        return f"{text}: state unknown ({job.error})"
    state = job.state
    assert state is not None
    text = f"{text}: {state.status}, {state.completed}/{state.total} done, {state.failed} failed"
    return text + (f" ({state.errors[0]})" if state.errors else "")


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"


def _said(error: Exception) -> str:
    return f"{error.code}: {error.message}" if isinstance(error, QwenError) else str(error)
