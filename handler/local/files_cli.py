"""`python -m handler files`: list the function's leftover uploads in DashScope's files API, and `--purge` them.

Only files named with the function's prefix (`qwen-fc-`, handler/ask/files.py's NAME_PREFIX) are listed or
deleted: the account's other files are never touched. An account holds at most 10,000 files and uploads
fail at that limit, so a file whose delete failed after its answer (logged as `document_delete_failed`)
is found and removed here. The key and endpoint are the deployment's (the shell's over s.yaml's), or the
local stand-in's with `--offline`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from handler.ask.files import NAME_PREFIX, DashScopeFiles, FileInfo
from handler.errors import QwenError

PAGE = 100  # files per list request


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m handler files",
        description=f"List the documents the function uploaded to DashScope's files API and left there (named "
        f"{NAME_PREFIX}...), and delete them with --purge. The account's other files are never listed or deleted.",
    )
    p.add_argument(
        "--purge", action="store_true", help="delete the files listed, saying what was deleted and what failed"
    )
    p.add_argument("--offline", action="store_true", help="the local DashScope stand-in (empty): no key, no network")
    p.add_argument(
        "--no-s-yaml", action="store_true", help="do not read s.yaml's environmentVariables: the shell's alone"
    )
    return p


def main(argv: Sequence[str], *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = parser().parse_args(argv)
    standin = None
    if args.offline:
        from handler.local.cli import OFFLINE_KEY
        from handler.local.standin import DashScopeStandIn

        standin = DashScopeStandIn(api_key=OFFLINE_KEY).start()
        files = DashScopeFiles(OFFLINE_KEY, standin.url)
    else:
        env = _environment(args.no_s_yaml)
        key = env.get("DASHSCOPE_API_KEY", "").strip()
        if not key:
            print("DASHSCOPE_API_KEY is not set: export the key the function uses, or add --offline", file=sys.stderr)
            return 2
        files = DashScopeFiles(key, env.get("DASHSCOPE_HTTP_BASE_URL", "").strip() or None)
    try:
        return run(files, purge=args.purge, out=out)
    finally:
        if standin is not None:
            standin.stop()


def run(files: DashScopeFiles, *, purge: bool, out: TextIO) -> int:
    """List (and with `purge` delete) the function's files; 0 when all went well, 1 when anything failed."""
    try:
        ours = leftovers(files)
    except QwenError as error:
        print(f"cannot list the files: {error}", file=sys.stderr)
        return 1
    if not ours:
        print(f"no leftover uploads (no file named {NAME_PREFIX}...)", file=out)
        return 0
    for info in ours:
        print(_row(info), file=out)
    total = sum(info.bytes for info in ours)
    print(f"{len(ours)} file(s), {total:,} bytes", file=out)
    if not purge:
        print("run with --purge to delete them", file=out)
        return 0
    failed = 0
    for info in ours:
        try:
            files.delete(info.id)
        except QwenError as error:
            failed += 1
            print(f"failed  {info.id} {info.filename}: {error}", file=out)
        else:
            print(f"deleted {info.id} {info.filename}", file=out)
    print(f"deleted {len(ours) - failed} of {len(ours)}" + (f", {failed} failed" if failed else ""), file=out)
    return 1 if failed else 0


def leftovers(files: DashScopeFiles) -> list[FileInfo]:
    """Every file of the account named with the function's prefix, page by page."""
    found: list[FileInfo] = []
    after = None
    while True:
        page = files.list(limit=PAGE, after=after)
        found.extend(info for info in page if info.filename.startswith(NAME_PREFIX))
        if len(page) < PAGE:
            return found
        after = page[-1].id


def _row(info: FileInfo) -> str:
    created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(info.created_at)) if info.created_at else "-"
    return f"{info.id}  {info.filename}  {info.bytes:,} bytes  {created}  {info.status or '-'}"


def _environment(no_s_yaml: bool) -> dict[str, Any]:
    from handler.local import deployed_env

    deployed = {} if no_s_yaml else deployed_env.variables()
    return {**deployed, **os.environ}
