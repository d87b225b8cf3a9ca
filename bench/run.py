"""The benchmark: this project against the naive port of the reference, side by side in one run.

    .venv/bin/python -m bench.run             # about 3 minutes; creates bench/.venvs on first use

Both sides answer the same local DashScope stand-in on 127.0.0.1 (no network, no key), each from
its own virtualenv: `naive` has only `pip install dashscope` (the newest release), `project` has
only requirements.txt. Prints a table of ratios (project / naive) with the absolute figures, and
writes it to bench/results/latest.md.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import batch, tokens
from handler.local.standin import DashScopeStandIn

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
VENVS = BENCH / ".venvs"
KEY = "sk-bench-000000000000"
COLD_RUNS = 7
WARM_ROUNDS = 5  # fresh processes per side, alternating, 1,000 invocations each
FC_PLATFORM = ["--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64", "--implementation", "cp"]
SIDES = {
    "naive": ["dashscope"],  # what a user following the tutorial installs: the newest release
    "project": ["-r", str(ROOT / "requirements.txt")],
}


def pip(python: Path, *args: str) -> None:
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args], check=True)


def venv(side: str) -> Path:
    """The side's virtualenv, created once and reused while its requirements are unchanged."""
    home = VENVS / side
    python = home / "bin" / "python"
    wanted = " ".join(SIDES[side]) + (ROOT / "requirements.txt").read_text()
    marker = home / "bench-requirements"
    if not python.exists() or not marker.exists() or marker.read_text() != wanted:
        shutil.rmtree(home, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(home)], check=True)
        pip(python, *SIDES[side])
        marker.write_text(wanted)
    return python


def installed(python: Path, name: str) -> str:
    done = subprocess.run([str(python), "-m", "pip", "show", name], capture_output=True, text=True, check=True)
    return re.search(r"^Version: (.+)$", done.stdout, re.M).group(1)


# What an FC Python instance's environment looks like (FC's documented variables and the function's
# own), instead of this machine's: both sides see the same, and requests scans it on every call.
FC_ENVIRONMENT = {
    "PATH": "/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin:/code:/code/bin:/opt:/opt/bin",
    "LD_LIBRARY_PATH": "/code:/code/lib:/usr/local/lib:/opt/lib",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "TZ": "UTC",
    "FC_FUNCTION_NAME": "qwen-chat",
    "FC_FUNCTION_HANDLER": "index.handler",
    "FC_FUNCTION_MEMORY_SIZE": "512",
    "FC_REGION": "cn-hangzhou",
    "FC_ACCOUNT_ID": "1234567890",
    "FC_INSTANCE_ID": "c-0123456789abcdef",
    "FC_RUNTIME_VERSION": "python3.10",
    "FC_CUSTOM_LISTEN_PORT": "9000",
    "FC_SERVER_PORT": "9000",
    "FC_QUALIFIER": "LATEST",
    "FC_FUNC_CODE_PATH": "/code",
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "STS.bench-access-key-id",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "bench-access-key-secret",
    "ALIBABA_CLOUD_SECURITY_TOKEN": "bench-security-token",
    "QWEN_MODE": "messages",
    "QWEN_MODEL": "qwen-turbo",
}


def probe_env(standin: DashScopeStandIn, no_pyc: str | None = None) -> dict[str, str]:
    env = dict(FC_ENVIRONMENT)
    env.update(DASHSCOPE_API_KEY=KEY, DASHSCOPE_HTTP_BASE_URL=standin.url)
    if no_pyc:
        # Nothing written: each run compiles the code dir's modules from source again, as FC does
        # on every cold start when the package ships no .pyc.
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def code_dir(python: Path, side: str) -> Path:
    """What FC's /code holds for this side, with no .pyc anywhere: the side's code and the
    site-packages of its virtualenv, copied without __pycache__ (the runtime's standard library
    keeps its own bytecode, as on FC)."""
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    target = Path(tempfile.mkdtemp(prefix=f"fc-code-{side}-"))
    no_bytecode = shutil.ignore_patterns("__pycache__", "*.pyc", "pip", "pip-*", "setuptools*", "_distutils_hack")
    shutil.copytree(site, target, dirs_exist_ok=True, ignore=no_bytecode)
    if side == "project":
        shutil.copy2(ROOT / "index.py", target)
        shutil.copytree(ROOT / "handler", target / "handler", ignore=no_bytecode)
    else:
        shutil.copy2(BENCH / "naive_handler.py", target)
    return target


def cold_start(python: Path, side: str, standin: DashScopeStandIn, *, code: Path | None = None) -> float:
    """Seconds from starting a fresh process to its first answer (from `code` with no .pyc, if given)."""
    with tempfile.TemporaryDirectory() as empty:
        env = probe_env(standin, empty if code else None)
        command = [str(python), str(BENCH / "probe.py"), side, "cold"]
        if code:
            env["BENCH_CODE_DIR"] = str(code)
            command.insert(1, "-S")  # no site-packages: only the copied code dir, like FC
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=BENCH,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = process.stdout.readline()
        elapsed = time.perf_counter() - started
        _, err = process.communicate(timeout=60)
    if line.strip() != "answered":
        raise RuntimeError(f"{side} cold probe failed: {err[-2000:]}")
    return elapsed


def warm(python: Path, side: str, standin: DashScopeStandIn, count: int) -> dict:
    standin.reset()
    standin.keep_requests = False
    done = subprocess.run(
        [str(python), str(BENCH / "probe.py"), side, "warm", str(count)],
        cwd=BENCH,
        env=probe_env(standin),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{side} warm probe failed: {done.stderr[-2000:]}")
    figures = json.loads(done.stdout.splitlines()[-1])
    figures["connections"] = standin.connections
    return figures


def import_seconds(python: Path, runs: int = 5) -> float:
    """Median wall time of `import dashscope` in a fresh process (bytecode cached)."""
    code = "import time; t = time.perf_counter(); import dashscope; print(time.perf_counter() - t)"
    subprocess.run([str(python), "-c", code], capture_output=True, check=True)  # write the .pyc first
    return statistics.median(
        float(subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(runs)
    )


def package(args: list[str], python_version: str = "3.10") -> tuple[float, int, Path]:
    """Build the deployment package as s.yaml does (FC's platform, python_version); MB and dists."""
    target = Path(tempfile.mkdtemp(prefix="fc-package-"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--target",
            str(target),
            *FC_PLATFORM,
            "--python-version",
            python_version,
            *args,
        ],
        check=True,
    )
    size = sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
    return size / 1024**2, len(list(target.glob("*.dist-info"))), target


def package_answers(target: Path, version: str) -> bool | None:
    """Answer a question from the built package alone with that Python (None when not installed)."""
    python = shutil.which(f"python{version}") and Path(
        subprocess.run(
            [f"python{version}", "-c", "import sys; print(sys.executable)"], capture_output=True, text=True
        ).stdout.strip()
        or "/nonexistent"
    )
    pyenv = Path.home() / ".pyenv" / "versions"
    candidates = [python] if python and python.exists() else sorted(pyenv.glob(f"{version}.*/bin/python"))
    if not candidates:
        return None
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": f"{ROOT}:{target}"}
    done = subprocess.run(
        [str(candidates[-1]), "-S", "-m", "handler", "--offline", "--quiet", "如何做西红柿炖牛腩?"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode == 0 and '"status_code":200' in done.stdout


@dataclass
class Row:
    metric: str
    project: float
    naive: float | None
    unit: str
    target: str = ""
    ok: bool | None = None

    @property
    def ratio(self) -> str:
        return f"{self.project / self.naive:.2f}" if self.naive else "-"


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "MB":
        return f"{value:.1f} MB"
    return f"{value:g} {unit}".strip()


def main() -> None:
    only_warm = "--warm-only" in sys.argv  # a quick look at the warm figures while working on them
    pythons = {side: venv(side) for side in SIDES}
    versions = {side: installed(pythons[side], "dashscope") for side in SIDES}
    rows: list[Row] = []
    with DashScopeStandIn(api_key=KEY) as standin:
        codes = {side: code_dir(pythons[side], side) for side in SIDES}
        for pyc in () if only_warm else (True, False):
            samples: dict[str, list[float]] = {side: [] for side in SIDES}
            for side in SIDES:  # one unmeasured run each writes the .pyc files (or warms the disk)
                cold_start(pythons[side], side, standin, code=None if pyc else codes[side])
            for _ in range(COLD_RUNS):
                for side in SIDES:  # alternating, so drift in the machine hits both sides alike
                    samples[side].append(cold_start(pythons[side], side, standin, code=None if pyc else codes[side]))
            project, naive = (statistics.median(samples[s]) for s in ("project", "naive"))
            label = "cold start, .pyc present" if pyc else "cold start, no .pyc in the code dir"
            rows.append(
                Row(f"{label} (median of {COLD_RUNS})", project, naive, "s", "<= 0.60 x", project <= 0.6 * naive)
            )
        for code in codes.values():
            shutil.rmtree(code, ignore_errors=True)
        rounds: dict[str, list[dict]] = {side: [] for side in SIDES}
        for _ in range(WARM_ROUNDS):
            for side in SIDES:
                rounds[side].append(warm(pythons[side], side, standin, 1000))

    def quantile(side: str, q: float, key: str = "times") -> float:
        """The median over rounds of each round's quantile: a slow round (the VM's neighbours) moves
        one sample, not the whole distribution."""

        def of(run: dict) -> float:
            times = sorted(run[key])
            return times[int(q * (len(times) - 1))] * 1000

        return statistics.median(of(run) for run in rounds[side])

    def median_of(side: str, value) -> float:
        return statistics.median(value(run) for run in rounds[side])

    runs = {
        side: {
            "max_rss_kib": median_of(side, lambda r: r["max_rss_kib"]),
            "growth_kib": median_of(side, lambda r: r["rss_kib"]["1000"] - r["rss_kib"]["100"]),
            "connections": max(run["connections"] for run in rounds[side]),
        }
        for side in SIDES
    }

    label = f"{WARM_ROUNDS} rounds of 1,000"
    p50 = {s: quantile(s, 0.5) for s in SIDES}
    p90 = {s: quantile(s, 0.9) for s in SIDES}
    rows.append(
        Row(
            f"warm invocation, median of {label}",
            p50["project"],
            p50["naive"],
            "ms",
            "<= 1.10 x",
            p50["project"] <= 1.10 * p50["naive"],
        )
    )
    rows.append(
        Row(
            f"warm invocation, p90 of {label}",
            p90["project"],
            p90["naive"],
            "ms",
            "<= 1.10 x",
            p90["project"] <= 1.10 * p90["naive"],
        )
    )
    cpu = {s: quantile(s, 0.5, "cpu") for s in SIDES}
    rows.append(Row("CPU time per warm invocation, median (this process's share)", cpu["project"], cpu["naive"], "ms"))
    peak = {s: runs[s]["max_rss_kib"] / 1024 for s in SIDES}
    rows.append(
        Row(
            "peak RSS after 1,000 invocations",
            peak["project"],
            peak["naive"],
            "MB",
            "<= 0.80 x",
            peak["project"] <= 0.8 * peak["naive"],
        )
    )
    growth = {s: runs[s]["growth_kib"] / 1024 for s in SIDES}
    rows.append(
        Row(
            "RSS growth, invocation 100 to 1,000",
            growth["project"],
            growth["naive"],
            "MB",
            "< 1 MB",
            growth["project"] < 1,
        )
    )
    rows.append(
        Row(
            "TCP connections opened per 1,001 warm invocations",
            runs["project"]["connections"],
            runs["naive"]["connections"],
            "",
            "1",
            runs["project"]["connections"] == 1,
        )
    )
    if only_warm:
        for row in rows:
            print(f"{row.metric}: {fmt(row.project, row.unit)} vs {fmt(row.naive, row.unit)} = {row.ratio}")
        return
    imports = {s: import_seconds(pythons[s]) for s in SIDES}
    rows.append(
        Row(
            f"import dashscope ({versions['project']} / {versions['naive']})", imports["project"], imports["naive"], "s"
        )
    )
    ours_mb, ours_dists, ours_dir = package(["--no-deps", "-r", str(ROOT / "requirements-fc.txt")])
    naive_mb, naive_dists, naive_dir = package(["dashscope"])
    rows.append(
        Row(f"deployment package, python3.10 ({ours_dists} / {naive_dists} distributions)", ours_mb, naive_mb, "MB")
    )
    answers = {"3.10": package_answers(ours_dir, "3.10")}
    shutil.rmtree(naive_dir, ignore_errors=True)
    shutil.rmtree(ours_dir, ignore_errors=True)
    _, _, ours_312 = package(["--no-deps", "-r", str(ROOT / "requirements-fc.txt")], python_version="3.12")
    answers["3.12"] = package_answers(ours_312, "3.12")
    shutil.rmtree(ours_312, ignore_errors=True)

    batch_figures = batch.measure()
    token_figures = tokens.measure()

    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()} "
        f"({platform.platform()}); dashscope {versions['project']} (project) vs {versions['naive']} (naive).",
        "",
        "| metric | project | naive | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        met = "" if row.ok is None else ("yes" if row.ok else "**no**")
        lines.append(
            f"| {row.metric} | {fmt(row.project, row.unit)} | {fmt(row.naive, row.unit)} | {row.ratio} "
            f"| {row.target} | {met} |"
        )
    lines += [
        "",
        f"Deployment package answers a question offline from itself alone: python3.10 {answers['3.10']}, "
        f"python3.12 {answers['3.12']} (None: that Python is not installed here).",
        f"Batch (bench.batch): 8 messages {batch_figures['eight_s']:.3f} s vs 1 message "
        f"{batch_figures['one_s']:.3f} s at 0.5 s upstream latency: {batch_figures['ratio']:.2f} x (target <= 1.5 x).",
        "Token guard (bench.tokens): "
        + "; ".join(
            f"{name} {f['seconds']:.3f} s ({f['verdict']}, tokenizer loaded: {f['tokenizer_loaded']})"
            for name, f in token_figures.items()
        ),
    ]
    report = "\n".join(lines)
    print(report)
    (BENCH / "results").mkdir(exist_ok=True)
    (BENCH / "results" / "latest.md").write_text(report + "\n")


if __name__ == "__main__":
    main()
