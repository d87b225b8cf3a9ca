"""The files `s deploy` uploads: the code directory filtered by .fcignore, and its zip.

Serverless Devs walks the code directory with gitignore rules from .fcignore (npm's ignore-walk): a
pattern without a slash matches a name at any depth, one with a slash is anchored at the directory,
`**` spans directories, `!` re-includes, and an ignored directory takes everything beneath it. The
bench zips exactly this list, and tests check what it keeps (the bytecode) and what it leaves out.
"""

from __future__ import annotations

import os
import re
import time
import zipfile
from pathlib import Path


def _regex(pattern: str) -> str:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return out


def rules(project: Path) -> list[tuple[re.Pattern[str], bool, bool]]:
    """(regex over a relative posix path, negated, directories only) for each line of .fcignore."""
    path = project / ".fcignore"
    found = []
    for line in path.read_text().splitlines() if path.exists() else ():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        line = line.removeprefix("!")
        dir_only = line.endswith("/")
        anchored = "/" in line.rstrip("/")  # a leading or middle slash anchors it, as in gitignore
        line = line.strip("/") if dir_only else line.removeprefix("/")
        body = _regex(line)
        found.append((re.compile(body if anchored else f"(?:.*/)?{body}"), negated, dir_only))
    return found


def ignored(relative: str, is_dir: bool, compiled: list[tuple[re.Pattern[str], bool, bool]]) -> bool:
    verdict = False
    for regex, negated, dir_only in compiled:
        if (is_dir or not dir_only) and regex.fullmatch(relative):
            verdict = not negated
    return verdict


def shipped(project: Path) -> list[Path]:
    """Every file `s deploy` would upload from `project`, relative to it, sorted."""
    compiled = rules(project)
    files = []
    for top, dirs, names in os.walk(project):
        base = Path(top).relative_to(project)
        dirs[:] = [d for d in dirs if not ignored((base / d).as_posix(), True, compiled)]
        files += [base / n for n in names if not ignored((base / n).as_posix(), False, compiled)]
    return sorted(files)


def write_zip(project: Path, target: Path, leave_out=lambda path: False) -> int:
    """Zips what ships (less what `leave_out` says) as the deploy does; returns the file count."""
    files = [f for f in shipped(project) if not leave_out(f)]
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for relative in files:
            archive.write(project / relative, relative.as_posix())
    return len(files)


def extract(archive: Path, target: Path) -> None:
    """Unpacks as unzip does: each file's mtime is the zip's, on its 2-second DOS clock."""
    with zipfile.ZipFile(archive) as opened:
        for info in opened.infolist():
            path = Path(opened.extract(info, target))
            stamp = time.mktime((*info.date_time, 0, 0, -1))
            os.utime(path, (stamp, stamp))
