"""The benchmark: this project against the naive port of the reference, side by side in one run.

    .venv/bin/python -m bench.run             # about 5 minutes; creates bench/.venvs on first use
    .venv/bin/python -m bench.run --cpu 0.05,0.35,1   # the same sides at FC vCPU specs (bench/spec.py)

Three sides answer the same local DashScope stand-in on 127.0.0.1 (no network, no key):
`naive` is the reference ported the obvious way on the newest dashscope (`pip install dashscope`),
`pinned` is the same naive handler on the SDK this project pins (so the pin's gain is isolated from
the project's own choices), `project` is this project. Cold starts are measured as FC sees them: each
side's deployment package built for python3.10 (the project's by deploy/build.py, exactly as `s
deploy` runs it; the naive ones with `pip install --target`, no bytecode, the usual way), zipped,
extracted into a directory this process cannot write, and started with a python3.10. Warm figures
run in each side's virtualenv. Prints a table with the absolute figures and both ratios, the
bytecode check, and writes the same to bench/results/latest.md (README-ready, naming the machine).
Exit status 1 when the package does not answer or the bytecode check fails.
"""

from __future__ import annotations

import argparse
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import batch, tokens
from deploy import build, package
from handler.local.standin import DashScopeStandIn

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
VENVS = BENCH / ".venvs"
KEY = "sk-bench-000000000000"
COLD_RUNS = 7
WARM_ROUNDS = 5  # fresh processes per side, alternating, 1,000 invocations each
RUNTIME = "3.10"  # s.yaml's vars.pythonVersion
PIN = re.search(r"^dashscope(?:\[\w+\])?==(\S+)", (ROOT / "requirements.txt").read_text(), re.M).group(1)
SIDES = {
    "project": ["-r", str(ROOT / "requirements.txt")],
    "pinned": [f"dashscope=={PIN}"],  # the naive handler on this project's pin
    "naive": ["dashscope"],  # what a user following the tutorial installs: the newest release
}

# dashscope 2.x imports tomli below Python 3.11 but declares it only for its `acli` extra: a plain
# `pip install dashscope` cannot even import on FC's python3.10 (ModuleNotFoundError: tomli). The naive
# package gets it, as its user would add it after the first failed invocation.
FC_FIXES = {"naive": ["tomli"]}


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
# own), instead of this machine's: every side sees the same, and requests scans it on every call.
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
    # BENCH_QWEN_MODEL=qwen3-vl-flash measures the project's multimodal-generation path (the baseline
    # stays the reference's text call: the ratio is the project's overhead on that path).
    "QWEN_MODEL": os.environ.get("BENCH_QWEN_MODEL", "qwen-turbo"),
}


def probe_env(standin: DashScopeStandIn) -> dict[str, str]:
    env = dict(FC_ENVIRONMENT)
    env.update(DASHSCOPE_API_KEY=KEY, DASHSCOPE_HTTP_BASE_URL=standin.url)
    return env


# ---- the deployment packages, as FC receives them ----------------------------------------------------


@dataclass
class Package:
    """One side's package: the built directory, its zip, and the read-only directory it was unpacked to."""

    side: str
    built: Path
    zipped: Path
    code: Path

    @property
    def path(self) -> str:
        """sys.path entries, as FC sets them: /code, and /code/python (PYTHONPATH) for the project."""
        entries = [self.code, self.code / "python"] if self.side == "project" else [self.code]
        return os.pathsep.join(str(entry) for entry in entries)

    def unzipped_mb(self) -> float:
        return sum(f.stat().st_size for f in self.built.rglob("*") if f.is_file()) / 1024**2

    def distributions(self) -> int:
        return len(list(self.built.rglob("*.dist-info")))


def unpack_read_only(zipped: Path, work: Path) -> Path:
    """Extracts as FC does (mtimes on the zip's 2-second clock), then takes every write bit away."""
    code = work / (zipped.stem + "-code")
    package.extract(zipped, code)
    subprocess.run(["chmod", "-R", "a-w", str(code)], check=True)
    return code


def project_package(version: str, work: Path) -> Package:
    """What `s deploy` uploads: the shipped files, deploy/build.py run on them, zipped as .fcignore says."""
    built = work / f"project-{version}"
    for relative in package.shipped(ROOT):
        (built / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, built / relative)
    for name in (".fcignore", "requirements-fc.txt"):
        shutil.copy2(ROOT / name, built / name)
    done = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "build.py"), version, "--project", str(built)],
        capture_output=True,
        text=True,
        check=True,
    )
    print("  " + "\n  ".join(line for line in done.stdout.splitlines() if line.startswith("pre-deploy")))
    zipped = work / f"project-{version}.zip"
    package.write_zip(built, zipped)
    return Package("project", built, zipped, unpack_read_only(zipped, work))


def without_bytecode(pkg: Package, work: Path) -> Package:
    """The same package with every .pyc left out of its zip: what shipped before deploy/build.py compiled."""
    zipped = work / f"{pkg.zipped.stem}-no-pyc.zip"
    package.write_zip(pkg.built, zipped, leave_out=lambda path: path.suffix == ".pyc")
    return Package(pkg.side, pkg.built, zipped, unpack_read_only(zipped, work))


def naive_package(side: str, work: Path, python: str) -> Package:
    """The naive port deployed the usual way: `pip install -t .` with the runtime's Python, no bytecode."""
    built = work / side
    command = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--root-user-action=ignore"]
    command.append("--no-compile")
    wanted = [*SIDES[side], *FC_FIXES.get(side, [])]
    subprocess.run([*command, "--only-binary=:all:", "--target", str(built), *wanted], check=True)
    shutil.copy2(BENCH / "naive_handler.py", built)
    zipped = work / f"{side}.zip"
    package.write_zip(built, zipped)
    return Package(side, built, zipped, unpack_read_only(zipped, work))


def read_only() -> list[str]:
    """As root, chmod alone does not stop writes: drop the capabilities that bypass file permissions."""
    if os.geteuid() == 0 and shutil.which("setpriv"):
        return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]
    return []


def cold_start(
    python: str, pkg: Package, standin: DashScopeStandIn, *, audit: bool = False, prefix: Sequence[str] = ()
) -> tuple[float, dict]:
    """Seconds from starting python on the read-only package to its first answer (and, audited, what
    compiled). `prefix` runs the child under a CPU quota (bench/spec.py)."""
    env = probe_env(standin)
    env["BENCH_CODE_DIR"] = pkg.path
    if audit:
        env["BENCH_AUDIT"] = "1"
    command = [*prefix, *read_only(), python, "-S", str(BENCH / "probe.py"), pkg.side, "cold"]
    with tempfile.TemporaryFile("w+") as errors:  # a file, not a pipe: nothing to drain while timing
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=BENCH, env=env, stdout=subprocess.PIPE, stderr=errors, text=True)
        line = process.stdout.readline()
        elapsed = time.perf_counter() - started
        rest = process.stdout.read()  # through the same buffer readline filled (communicate() would skip it)
        process.wait(timeout=60)
        errors.seek(0)
        err = errors.read()
    if line.strip() != "answered" or (audit and not rest.strip()):
        raise RuntimeError(f"{pkg.side} cold probe from {pkg.code} failed: {line}{rest}{err[-2000:]}")
    return elapsed, json.loads(rest) if audit else {}


@dataclass
class BytecodeCheck:
    """Which of the package's modules Python compiled from source at cold start (audit hook on `compile`)."""

    label: str
    dashscope_loaded: int
    dashscope_compiled: int
    package_compiled: int

    @property
    def passed(self) -> bool:
        # Can fail: any source of the package compiled, or dashscope not loaded from the package at all.
        return self.dashscope_loaded > 0 and self.package_compiled == 0

    def line(self) -> str:
        verdict = "pass" if self.passed else "FAIL"
        return (
            f"{self.label}: {self.dashscope_compiled} of {self.dashscope_loaded} dashscope modules and "
            f"{self.package_compiled} package modules compiled from source at cold start: {verdict}"
        )


def bytecode_check(label: str, python: str, pkg: Package, standin: DashScopeStandIn) -> BytecodeCheck:
    before = sorted(str(p) for p in pkg.code.rglob("*"))
    _, audit = cold_start(python, pkg, standin, audit=True)
    if sorted(str(p) for p in pkg.code.rglob("*")) != before:
        raise RuntimeError(f"{pkg.code} was written to during a cold start: not read-only")
    inside = [f for f in audit["compiled"] if f.startswith(str(pkg.code))]
    dashscope = [f for f in audit["dashscope_files"] if f.startswith(str(pkg.code))]
    return BytecodeCheck(label, len(dashscope), sum("/dashscope/" in f for f in inside), len(inside))


# ---- warm figures, in each side's virtualenv ---------------------------------------------------------


def warm(python: Path, side: str, standin: DashScopeStandIn, count: int, prefix: Sequence[str] = ()) -> dict:
    standin.reset()
    standin.keep_requests = False
    done = subprocess.run(
        [*prefix, str(python), str(BENCH / "probe.py"), side, "warm", str(count)],
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


# ---- the table ---------------------------------------------------------------------------------------


@dataclass
class Row:
    metric: str
    figures: dict[str, float]  # side -> value
    unit: str
    target: str = ""
    ok: bool | None = None
    ratios: bool = True  # False where the figures are near zero and the target absolute: a ratio is noise

    def ratio(self, baseline: str) -> str:
        if not self.ratios or not self.figures.get(baseline):
            return "-"
        return f"{self.figures['project'] / self.figures[baseline]:.2f}"


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


def machine() -> str:
    return (
        f"{os.cpu_count()} cores, {platform.machine()}, {platform.system()} {platform.release()}; "
        f"bench driver Python {platform.python_version()}"
    )


def table(rows: list[Row], versions: dict[str, str]) -> list[str]:
    lines = [
        f"| metric | project | naive on dashscope {versions['pinned']} | naive (dashscope {versions['naive']}) "
        f"| project / naive | project / naive {versions['pinned']} | target (vs naive) | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        met = "" if row.ok is None else ("yes" if row.ok else "**no**")
        cells = " | ".join(fmt(row.figures.get(side), row.unit) for side in ("project", "pinned", "naive"))
        ratios = f"{row.ratio('naive')} | {row.ratio('pinned')}"
        lines.append(f"| {row.metric} | {cells} | {ratios} | {row.target} | {met} |")
    return lines


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cpu", metavar="SPECS", help="comma list of FC vCPU specs, e.g. 0.05,0.35,1: the per-spec run (bench/spec.py)"
    )
    parser.add_argument("--quick", action="store_true", help="every figure once over: to try the bench, not to quote")
    parser.add_argument("--warm-only", action="store_true", help="the warm figures only (no packages, no cold starts)")
    args = parser.parse_args(argv)
    if args.cpu is not None and args.warm_only:
        parser.error("--warm-only does not apply to --cpu")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    global COLD_RUNS, WARM_ROUNDS
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.cpu is not None:
        from bench import spec

        return spec.main(argv)
    only_warm = args.warm_only
    if args.quick:
        COLD_RUNS, WARM_ROUNDS = 1, 1
    pythons = {side: venv(side) for side in SIDES}
    versions = {side: installed(pythons[side], "dashscope") for side in SIDES}
    runtime = build.find_interpreter(RUNTIME)
    if runtime is None and not only_warm:
        sys.exit(f"bench needs a python{RUNTIME} (FC's runtime) for the cold starts; none found")
    rows: list[Row] = []
    checks: list[BytecodeCheck] = []
    sizes: dict[str, dict[str, float]] = {}
    work = Path(tempfile.mkdtemp(prefix="fc-bench-"))
    try:
        with DashScopeStandIn(api_key=KEY) as standin:
            if not only_warm:
                print(f"building the packages for python{RUNTIME} ({runtime}):")
                packages = {
                    "project": project_package(RUNTIME, work),
                    "pinned": naive_package("pinned", work, runtime),
                    "naive": naive_package("naive", work, runtime),
                }
                project = packages["project"]
                no_pyc = without_bytecode(project, work)
                if (project.code / "handler" / "local").exists():
                    raise RuntimeError("the deployed package carries handler/local")
                variants: list[tuple[str, Package]] = [
                    ("project", project),
                    ("project-no-pyc", no_pyc),
                    ("pinned", packages["pinned"]),
                    ("naive", packages["naive"]),
                ]
                samples: dict[str, list[float]] = {name: [] for name, _ in variants}
                for _, pkg in variants:  # one unmeasured run each warms the page cache
                    cold_start(runtime, pkg, standin)
                for _ in range(COLD_RUNS):
                    for name, pkg in variants:  # alternating, so drift in the machine hits every side alike
                        samples[name].append(cold_start(runtime, pkg, standin)[0])
                cold = {name: statistics.median(values) for name, values in samples.items()}
                where = f"python{RUNTIME}, zipped package unpacked read-only, median of {COLD_RUNS}"
                rows.append(
                    Row(
                        f"cold start to first answer ({where}; the project's with its .pyc)",
                        {side: cold[side] for side in SIDES},
                        "s",
                        "<= 0.35 x",
                        cold["project"] <= 0.35 * cold["naive"],
                    )
                )
                rows.append(
                    Row(
                        "the same, the project's package with its .pyc left out",
                        {"project": cold["project-no-pyc"], "pinned": cold["pinned"], "naive": cold["naive"]},
                        "s",
                    )
                )
                checks.append(bytecode_check(f"project package, python{RUNTIME}", runtime, project, standin))
                checks.append(
                    bytecode_check("the same package with its .pyc removed (must FAIL)", runtime, no_pyc, standin)
                )
                checks.append(bytecode_check("naive package (must FAIL)", runtime, packages["naive"], standin))
                other = build.find_interpreter("3.12")
                if other:
                    print(f"building the project's package for python3.12 ({other}):")
                    p312 = project_package("3.12", work)
                    cold_start(other, p312, standin)  # answers from the package alone, or raises
                    checks.append(bytecode_check("project package, python3.12", other, p312, standin))
                imports = spec_import_time(runtime, project)
                for side, pkg in packages.items():
                    sizes[side] = {
                        "unzipped": pkg.unzipped_mb() if side != "project" else shipped_mb(pkg.built),
                        "zipped": pkg.zipped.stat().st_size / 1024**2,
                        "dists": pkg.distributions(),
                    }
            rounds: dict[str, list[dict]] = {side: [] for side in SIDES}
            for _ in range(WARM_ROUNDS):
                for side in SIDES:
                    rounds[side].append(warm(pythons[side], side, standin, 1000))
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(work)], check=False)
        shutil.rmtree(work, ignore_errors=True)

    def quantile(side: str, q: float, key: str = "times") -> float:
        """The median over rounds of each round's quantile: a slow round (the VM's neighbours) moves
        one sample, not the whole distribution."""

        def of(run: dict) -> float:
            times = sorted(run[key])
            return times[int(q * (len(times) - 1))] * 1000

        return statistics.median(of(run) for run in rounds[side])

    def per_side(value: Callable[[str], float]) -> dict[str, float]:
        return {side: value(side) for side in SIDES}

    def median_of(side: str, value: Callable[[dict], float]) -> float:
        return statistics.median(value(run) for run in rounds[side])

    label = f"{WARM_ROUNDS} rounds of 1,000"
    p50 = per_side(lambda s: quantile(s, 0.5))
    p90 = per_side(lambda s: quantile(s, 0.9))
    rows.append(
        Row(f"warm invocation, median of {label}", p50, "ms", "<= 1.10 x", p50["project"] <= 1.1 * p50["naive"])
    )
    rows.append(Row(f"warm invocation, p90 of {label}", p90, "ms", "<= 1.10 x", p90["project"] <= 1.1 * p90["naive"]))
    cpu = per_side(lambda s: quantile(s, 0.5, "cpu"))
    rows.append(Row("CPU time per warm invocation, median", cpu, "ms"))
    peak = per_side(lambda s: median_of(s, lambda r: r["max_rss_kib"]) / 1024)
    rows.append(
        Row("peak RSS after 1,000 invocations", peak, "MB", "<= 0.80 x", peak["project"] <= 0.8 * peak["naive"])
    )
    growth = per_side(lambda s: median_of(s, lambda r: r["rss_kib"]["1000"] - r["rss_kib"]["100"]) / 1024)
    rows.append(Row("RSS growth, invocation 100 to 1,000", growth, "MB", "< 1 MB", growth["project"] < 1, ratios=False))
    connections = per_side(lambda s: max(run["connections"] for run in rounds[s]))
    rows.append(
        Row(
            "TCP connections opened per 1,001 warm invocations",
            connections,
            "",
            "1",
            connections["project"] == 1,
            ratios=False,
        )
    )
    if only_warm:
        print("\n".join(table(rows, versions)))
        return 0
    rows.append(Row("import dashscope, in the side's virtualenv", per_side(lambda s: import_seconds(pythons[s])), "s"))
    rows.append(
        Row(
            f"deployment package, python{RUNTIME}, unzipped ("
            + " / ".join(f"{sizes[s]['dists']:g}" for s in SIDES)
            + " distributions)",
            {s: sizes[s]["unzipped"] for s in SIDES},
            "MB",
        )
    )
    rows.append(Row("deployment package, zipped", {s: sizes[s]["zipped"] for s in SIDES}, "MB"))
    rows.append(
        Row(
            f"the handler's own import (import index, -X importtime, python{RUNTIME}, in the package; "
            f"{imports.total_ms:.1f} ms with the standard modules, which the SDK loads anyway)",
            {"project": imports.own_ms},
            "ms",
            "< 25 ms",
            imports.own_ms < 25,
            ratios=False,
        )
    )

    batch_figures = batch.measure()
    token_figures = tokens.measure()
    expected = {True: "pass", False: "FAIL"}
    must_fail = [c for c in checks if "must FAIL" in c.label]
    checks_ok = all(c.passed for c in checks if c not in must_fail) and not any(c.passed for c in must_fail)
    lines = [
        f"Machine: {machine()}. Cold starts with python{RUNTIME} ({platform_python(runtime)}); "
        f"dashscope {versions['project']} (project), {versions['pinned']} (naive, pinned), "
        f"{versions['naive']} (naive).",
        "",
        *table(rows, versions),
        "",
        "Bytecode check (an audit hook counts every source file Python compiles during the cold start):",
        *(f"- {c.line()}" for c in checks),
        f"- the check {'behaves' if checks_ok else '**does not behave**'}: "
        + ", ".join(f"{c.label.split(' (')[0]} {expected[c.passed]}" for c in checks),
        "",
        f"The project's package answers from itself alone (read-only, no handler/local) under python{RUNTIME}"
        + (" and python3.12." if any("3.12" in c.label for c in checks) else "; python3.12 not installed here."),
        f"Batch (bench.batch): 8 messages {batch_figures['eight_s']:.3f} s vs 1 message "
        f"{batch_figures['one_s']:.3f} s at 0.5 s upstream latency: {batch_figures['ratio']:.2f} x (target <= 1.5 x).",
        "Token guard (bench.tokens): "
        + "; ".join(
            f"{name} {f['seconds']:.3f} s ({f['verdict']}, tokenizer loaded: {f['tokenizer_loaded']})"
            for name, f in token_figures.items()
        ),
        "",
        "Raw cold-start samples (s): "
        + "; ".join(f"{name} " + ", ".join(f"{v:.3f}" for v in values) for name, values in samples.items()),
    ]
    report = "\n".join(lines)
    print(report)
    (BENCH / "results").mkdir(exist_ok=True)
    (BENCH / "results" / "latest.md").write_text(report + "\n")
    return 0 if checks_ok else 1


def spec_import_time(runtime: str, pkg: Package):  # -> bench.spec.ImportFigures
    from bench import spec

    return spec.import_time(runtime, pkg)


def shipped_mb(built: Path) -> float:
    """What ships of the project's built directory (.fcignore applied), bytecode included."""
    return sum((built / f).stat().st_size for f in package.shipped(built)) / 1024**2


def platform_python(python: str) -> str:
    done = subprocess.run([python, "-c", "import platform; print(platform.python_version())"], capture_output=True)
    return "Python " + done.stdout.decode().strip()


if __name__ == "__main__":
    sys.exit(main())
