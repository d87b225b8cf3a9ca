"""The cheapest spec that works: FC's vCPU specs emulated with a CPU quota, project and naive port side by side.

    python -m bench.run --cpu 0.05,0.35,1     # about 10 minutes on 2 cores; bench/.venvs on first use
    python -m bench.run --cpu 0.35 --quick    # one sample of each: to try the bench, not to quote

FC bills vCPU-seconds and GB-seconds for the whole wall time of each invocation, and this function
mostly waits on DashScope: the smallest spec costs least as long as it keeps pace. At each spec (a
number of vCPUs) the measured children run in a cgroup whose CPU quota is that many CPUs (cgroup v1
cpu.cfs_quota_us over cpu.cfs_period_us, or v2 cpu.max); the DashScope stand-in and this process stay
outside it. Where no quota can be set (not root, no cpu controller) the run says so and skips.
  - cold start: the FC-like package (zipped, unpacked read-only, python3.10, bench/run.py) to its
    first answer: the project's with its .pyc, the naive port's as `pip install -t` leaves it;
  - warm: wall time per invocation at zero upstream latency, in each side's virtualenv;
  - paced: a realistic answer (bench/stream.py: 0.3 s to the first chunk, then 300 chunks at 50/s),
    streamed to the project, and whole after the same time to the naive port.
Targets are ratios to the naive port at the same spec in the same run: cold <= 0.35 x, warm median
<= 1.10 x, paced <= 1.02 x. Then the handler's own import time (`-X importtime`, in the package), the
peak RSS of the package answering qwen-turbo's longest answer and a batch of 8 of them at once, and
the cost table: every measured cpu with its valid memory sizes, priced from the paced wall times.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import run, stream
from deploy import build
from handler.ask.models import DEFAULT_MODELS
from handler.local.standin import DashScopeStandIn
from handler.local.standin import stream as streamed

PERIOD_US = 100_000
V1 = Path("/sys/fs/cgroup/cpu")  # a cgroup v1 cpu hierarchy
V2 = Path("/sys/fs/cgroup")  # the unified (v2) hierarchy, when it is mounted here

# FC 3.0's function specs (CreateFunction API reference, as quoted in the issue): cpu from 0.05 vCPU
# in 0.05 steps, memory from 128 MB in 64 MB steps, vCPU:GB from 1:1 to 1:4.
CPU_STEP, CPU_MAX = 0.05, 16.0
MEMORY_MIN, MEMORY_STEP, MEMORY_MAX = 128, 64, 32 * 1024
DISK_MB = 512  # s.yaml's diskSize

# FC's prices, from Alibaba's billing overview (Chinese site), read 2026-12-01 through the project's
# search tool: https://help.aliyun.com/zh/functioncompute/fc/product-overview/billing-overview-of-fc
# "CU使用量实行按月阶梯累计计费": tier 1 (0, 200 million CU] 0.00011 CNY/CU (the 20%-off 0.000088 ran
# from 2024-08-27 to 2026-08-27, over at the date read). Conversion factors, the same on the FC 3.0
# pay-as-you-go page https://www.alibabacloud.com/help/en/functioncompute/fc-3-0/product-overview/pay-as-you-go-billing-method-1
# (copy "Last Updated: Aug 27, 2024"): active vCPU 1 CU/vCPU-s, idle vCPU 0, memory 0.15 CU/GB-s,
# disk 0.05 CU/GB-s, 75 CU per 10,000 invocations; on-demand CPU instances are billed by the
# millisecond of execution (help.aliyun.com/en/functioncompute/fc/product-overview/pay-as-you-go-billing-methods).
CNY_PER_CU = 0.00011
CU_PER_VCPU_S, CU_PER_GB_S, CU_PER_DISK_GB_S, CU_PER_INVOCATION = 1.0, 0.15, 0.05, 75 / 10_000
DEFAULT_MODEL = "qwen-turbo"  # s.yaml's QWEN_MODEL; its prices: handler/ask/models.py

# Shown in the cost table beside the smallest and largest memory of its cpu: s.yaml's spec before this bench.
PREVIOUS_SPEC = (0.35, 512)
# At the smallest memory that holds the peak, this share is left for FC's runtime and the page cache.
HEADROOM = 0.25
# A person waiting on `s invoke`: the interactive spec is the smallest whose cold start is this short.
INTERACTIVE_COLD_S = 2.0

COLD_RUNS, WARM_CALLS, PACE_CALLS = 3, 200, 3
LONG_TOKENS = 16_384  # qwen-turbo's max_output (handler/ask/models.py): the longest answer it gives
LONG_PIECE = "牛腩"  # 2 tokens per chunk by the stand-in's estimate
BATCH = 8  # s.yaml's QWEN_BATCH_CONCURRENCY, answered at once


# ---- the CPU quota -----------------------------------------------------------------------------------


class Quota:
    """A cgroup with a CPU quota of `cpu` CPUs; `prefix` starts a command inside it."""

    def __init__(self, cpu: float):
        self.cpu = cpu
        quota = round(cpu * PERIOD_US)
        name = f"qwen-fc-bench-{os.getpid()}-{cpu:g}"
        if (V1 / "cpu.cfs_quota_us").exists():
            self.version, self.path = 1, V1 / name
            self.path.mkdir()
            try:
                (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (self.path / "cpu.cfs_quota_us").write_text(str(quota))
            except OSError:
                self.close()
                raise
        elif "cpu" in _read(V2 / "cgroup.subtree_control").split():
            self.version, self.path = 2, V2 / name
            self.path.mkdir()
            try:
                (self.path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
            except OSError:
                self.close()
                raise
        else:
            raise OSError("no cgroup cpu controller: no /sys/fs/cgroup/cpu (v1), no cpu in cgroup.subtree_control (v2)")

    @property
    def prefix(self) -> list[str]:
        # The shell joins the cgroup, then becomes the command: every process of it runs under the quota.
        return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.path / "cgroup.procs")]

    def describe(self) -> str:
        quota = round(self.cpu * PERIOD_US)
        if self.version == 1:
            return f"cgroup v1 {self.path}: cpu.cfs_quota_us {quota} / cpu.cfs_period_us {PERIOD_US}"
        return f"cgroup v2 {self.path}: cpu.max {quota} {PERIOD_US}"

    def close(self) -> None:
        """Moves any process left in it out (to the parent group), then removes the cgroup."""
        procs = self.path / "cgroup.procs"
        for pid in _read(procs).split():
            with contextlib.suppress(OSError):  # it exited meanwhile
                (self.path.parent / "cgroup.procs").write_text(pid)
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.1)  # a process still exiting
        self.path.rmdir()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def quota_unavailable() -> str | None:
    """Why no CPU quota can be set here, or None when one can (tried and removed at once)."""
    if os.geteuid() != 0:
        return "not root: a cgroup CPU quota needs root"
    try:
        Quota(1.0).close()
    except OSError as error:
        return f"cannot create a cgroup with a CPU quota ({error})"
    return None


def parse_specs(text: str) -> list[float]:
    specs = []
    for part in text.split(","):
        cpu = float(part)
        steps = cpu / CPU_STEP
        if not (CPU_STEP <= cpu <= CPU_MAX) or abs(steps - round(steps)) > 1e-9:
            raise SystemExit(f"--cpu {part}: FC's cpu is 0.05 to 16 vCPU in steps of 0.05")
        specs.append(round(cpu, 2))
    return specs


def valid_memories(cpu: float) -> list[int]:
    """Every memory size (MB) FC allows with `cpu` vCPUs: 128 MB up in 64 MB steps, vCPU:GB 1:1 to 1:4."""
    return [m for m in range(MEMORY_MIN, MEMORY_MAX + 1, MEMORY_STEP) if cpu - 1e-9 <= m / 1024 <= 4 * cpu + 1e-9]


# ---- the figures at one spec -------------------------------------------------------------------------


@dataclass
class SpecFigures:
    cpu: float
    cold: dict[str, list[float]] = field(default_factory=dict)  # side -> seconds
    warm: dict[str, list[float]] = field(default_factory=dict)  # side -> seconds per invocation
    paced: dict[str, list[float]] = field(default_factory=dict)
    paced_cpu: dict[str, list[float]] = field(default_factory=dict)
    usage: dict | None = None  # the project's token usage for the paced answer
    batch: dict | None = None  # the project's wall and CPU for a paced batch of BATCH, answered at once


SIDES = ("project", "naive")


def _paced_probe(python: Path, args: list[str], standin: DashScopeStandIn, prefix: list[str], **env: str) -> dict:
    """probe.py ARGS against the stand-in's paced answer, under the quota's prefix; its last line as JSON."""
    standin.reset()
    standin.keep_requests = False
    standin.policy = stream.paced
    done = subprocess.run(
        [*prefix, str(python), str(run.BENCH / "probe.py"), *args],
        cwd=run.BENCH,
        env={**run.probe_env(standin), **env},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    standin.reset()
    if done.returncode != 0:
        raise RuntimeError(f"paced probe {' '.join(args)} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def paced_run(python: Path, side: str, standin: DashScopeStandIn, calls: int, prefix: list[str]) -> dict:
    return _paced_probe(python, [side, "warm", str(calls)], standin, prefix)


def measure(
    cpu: float,
    quota: Quota,
    runtime: str,
    packages: dict[str, run.Package],
    pythons: dict[str, Path],
    standin: DashScopeStandIn,
    counts: tuple[int, int, int],
) -> SpecFigures:
    cold_runs, warm_calls, pace_calls = counts
    figures = SpecFigures(cpu, {s: [] for s in SIDES}, {}, {}, {})
    for _ in range(cold_runs):
        for side in SIDES:  # alternating, so drift in the machine hits both sides alike
            figures.cold[side].append(run.cold_start(runtime, packages[side], standin, prefix=quota.prefix)[0])
            _progress(f"{cpu:g} vCPU cold {side} {figures.cold[side][-1]:.2f} s")
    for side in SIDES:
        figures.warm[side] = run.warm(pythons[side], side, standin, warm_calls, prefix=quota.prefix)["times"]
        _progress(f"{cpu:g} vCPU warm {side} median {statistics.median(figures.warm[side]) * 1000:.1f} ms")
    for side in SIDES:
        paced = paced_run(pythons[side], side, standin, pace_calls, quota.prefix)
        figures.paced[side], figures.paced_cpu[side] = paced["times"], paced["cpu"]
        if side == "project":
            figures.usage = paced.get("usage")
        _progress(f"{cpu:g} vCPU paced {side} median {statistics.median(paced['times']):.3f} s")
    figures.batch = paced_batch(pythons["project"], standin, quota.prefix)
    _progress(f"{cpu:g} vCPU paced batch of {BATCH} {figures.batch['wall']:.3f} s")
    return figures


def paced_batch(python: Path, standin: DashScopeStandIn, prefix: list[str]) -> dict:
    """BATCH paced answers streamed at once to one invocation (an MNS queue batch): the CPU they share."""
    args = ["project", "batch", str(BATCH)]
    return _paced_probe(python, args, standin, prefix, QWEN_BATCH_CONCURRENCY=str(BATCH))


def _progress(line: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


# ---- the handler's import, the peak memory -----------------------------------------------------------


@dataclass
class ImportFigures:
    total_ms: float  # `import index`, cumulative, as -X importtime gives it
    own_ms: float  # the self time of index and handler.* modules: what the SDK's import does not share
    stdlib_ms: float  # the rest: standard modules, all of which the SDK's import loads anyway
    runs: int

    @property
    def ratio(self) -> float:
        return self.own_ms / self.stdlib_ms if self.stdlib_ms else math.inf


OWN_IMPORT_TARGET_MS = 25.0  # the target for the handler's own import


def import_time(python: str, pkg: run.Package, runs: int = 11) -> ImportFigures:
    """`python -X importtime -c "import index"` in the package as FC runs it (its .pyc, read-only)."""
    env = {**run.FC_ENVIRONMENT, "PYTHONPATH": str(pkg.code / "python")}
    samples = []
    for i in range(runs + 1):
        done = subprocess.run(
            [*run.read_only(), python, "-S", "-X", "importtime", "-c", "import index"],
            cwd=pkg.code,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        if i == 0:
            continue  # the page cache
        total = own = 0
        for line in done.stderr.splitlines():
            if not line.startswith("import time:") or "|" not in line or "self [us]" in line:
                continue
            own_us, cumulative_us, name = (part.strip() for part in line[len("import time:") :].split("|"))
            if name == "index":
                total = int(cumulative_us)
            if name == "index" or name == "handler" or name.startswith("handler."):
                own += int(own_us)
        samples.append((total / 1000, own / 1000))
    total_ms = statistics.median(s[0] for s in samples)
    own_ms = statistics.median(s[1] for s in samples)
    stdlib_ms = statistics.median(s[0] - s[1] for s in samples)
    return ImportFigures(total_ms, own_ms, stdlib_ms, runs)


def peak_rss(runtime: str, pkg: run.Package, standin: DashScopeStandIn) -> dict:
    """The package answering qwen-turbo's longest answer, streamed, then a batch of BATCH of them at once."""
    chunks = LONG_TOKENS // 2
    standin.reset()
    standin.keep_requests = False
    standin.policy = lambda request: streamed(LONG_PIECE * chunks, chunks=chunks)
    env = {**run.probe_env(standin), "BENCH_CODE_DIR": pkg.path, "QWEN_BATCH_CONCURRENCY": str(BATCH)}
    try:
        done = subprocess.run(
            [*run.read_only(), runtime, "-S", str(run.BENCH / "probe.py"), "project", "peak", str(BATCH)],
            cwd=run.BENCH,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        standin.reset()
    if done.returncode != 0:
        raise RuntimeError(f"peak RSS probe failed: {done.stderr[-2000:]}")
    figures = json.loads(done.stdout.splitlines()[-1])
    # The child reports its own ru_maxrss; the parent's RUSAGE_CHILDREN would mix in every child so far.
    figures["peak_mb"] = max(figures["long_kib"], figures["batch_kib"], figures["tokenizer_kib"]) / 1024
    return figures


# ---- the tables --------------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(0.9 * (len(ordered) - 1))]


@dataclass
class Check:
    metric: str
    project: float
    naive: float
    unit: str
    limit: float  # project / naive must be <= limit

    @property
    def ratio(self) -> float:
        return self.project / self.naive

    @property
    def met(self) -> bool:
        return self.ratio <= self.limit


def checks(f: SpecFigures, warm_calls: int, pace_calls: int) -> list[Check]:
    cold = f"cold start to first answer (read-only package, python{run.RUNTIME}, median of {len(f.cold['project'])})"
    return [
        Check(cold, _median(f.cold["project"]), _median(f.cold["naive"]), "s", 0.35),
        Check(f"warm invocation, median of {warm_calls}", *(_median(f.warm[s]) * 1000 for s in SIDES), "ms", 1.10),
        Check(f"warm invocation, p90 of {warm_calls}", *(_p90(f.warm[s]) * 1000 for s in SIDES), "ms", 1.10),
        Check(f"paced answer wall time, median of {pace_calls}", *(_median(f.paced[s]) for s in SIDES), "s", 1.02),
    ]


def _fmt(value: float, unit: str) -> str:
    return f"{value:.3f} s" if unit == "s" else f"{value:.2f} {unit}"


def spec_table(results: list[SpecFigures], warm_calls: int, pace_calls: int) -> list[str]:
    lines = [
        "| vCPU | metric | project | naive port | project / naive | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in results:
        for c in checks(f, warm_calls, pace_calls):
            met = "yes" if c.met else "**no**"
            lines.append(
                f"| {f.cpu:g} | {c.metric} | {_fmt(c.project, c.unit)} | {_fmt(c.naive, c.unit)} | "
                f"{c.ratio:.2f} | <= {c.limit:.2f} x | {met} |"
            )
        cpu_ms = {s: _median(f.paced_cpu[s]) * 1000 for s in SIDES}
        lines.append(
            f"| {f.cpu:g} | CPU per paced answer, median | {cpu_ms['project']:.1f} ms | {cpu_ms['naive']:.1f} ms | "
            f"{cpu_ms['project'] / cpu_ms['naive']:.2f} | | |"
        )
        if f.batch:
            lines.append(
                f"| {f.cpu:g} | a batch of {BATCH} paced answers at once (MNS queue), wall / CPU | "
                f"{f.batch['wall']:.3f} s / {f.batch['cpu'] * 1000:.0f} ms | (no batches) | | | |"
            )
    return lines


@dataclass
class Cost:
    cpu: float
    memory_mb: int
    wall_s: float  # the project's paced wall time at this cpu, per answer
    tokens_cny: float  # per answer
    batch_wall_s: float | None = None  # a paced batch of BATCH answered in one invocation

    def _cu(self, wall_s: float, invocations: float) -> float:
        """CU for 1,000 answers taking `wall_s` of billed time each, in `invocations` invocations."""
        return (
            self.cpu * CU_PER_VCPU_S + self.memory_mb / 1024 * CU_PER_GB_S + DISK_MB / 1024 * CU_PER_DISK_GB_S
        ) * wall_s * 1000 + invocations * CU_PER_INVOCATION

    @property
    def batch_fc_cny(self) -> float:
        """FC's CNY for 1,000 answers asked BATCH at a time (one invocation's wall shared by BATCH)."""
        if self.batch_wall_s is None:
            return math.nan
        return self._cu(self.batch_wall_s / BATCH, 1000 / BATCH) * CNY_PER_CU

    @property
    def vcpu_s(self) -> float:  # per 1,000 answers
        return self.cpu * self.wall_s * 1000

    @property
    def gb_s(self) -> float:
        return self.memory_mb / 1024 * self.wall_s * 1000

    @property
    def disk_gb_s(self) -> float:
        return DISK_MB / 1024 * self.wall_s * 1000

    @property
    def cu(self) -> float:
        return self._cu(self.wall_s, 1000)

    @property
    def fc_cny(self) -> float:
        return self.cu * CNY_PER_CU

    @property
    def total_cny(self) -> float:
        return self.fc_cny + self.tokens_cny * 1000


def tokens_cny(usage: dict | None) -> float:
    """What the paced answer's tokens cost with the default model (handler/ask/models.py's prices)."""
    if not usage:
        return math.nan
    cost = DEFAULT_MODELS[DEFAULT_MODEL].cost(usage.get("input_tokens") or 0, usage.get("output_tokens") or 0)
    return math.nan if cost is None else cost


def costs(results: list[SpecFigures]) -> list[Cost]:
    rows = []
    for f in results:
        per_answer = tokens_cny(f.usage)
        for memory in valid_memories(f.cpu):
            batch = f.batch["wall"] if f.batch else None
            rows.append(Cost(f.cpu, memory, _median(f.paced["project"]), per_answer, batch))
    return rows


def holds(memory_mb: int, peak_mb: float) -> bool:
    return peak_mb <= memory_mb * (1 - HEADROOM)


def cost_table(rows: list[Cost], peak_mb: float) -> list[str]:
    lines = [
        "| vCPU | memory | vCPU:GB | wall per answer | vCPU-s | GB-s (memory) | GB-s (disk 512 MB) | CU | FC CNY "
        f"| tokens CNY ({DEFAULT_MODEL}) | FC share | FC CNY, asked {BATCH} at a time | holds the peak |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    by_cpu: dict[float, list[Cost]] = {}
    for row in rows:
        by_cpu.setdefault(row.cpu, []).append(row)
    for cpu, group in by_cpu.items():
        # Every valid memory of this cpu is priced alike (linear in memory): the table shows the
        # smallest, the smallest that holds the peak, the largest (and the previous default).
        fitting = [r for r in group if holds(r.memory_mb, peak_mb)]
        shown = {group[0].memory_mb, group[-1].memory_mb}
        if cpu == PREVIOUS_SPEC[0]:
            shown.add(PREVIOUS_SPEC[1])
        if fitting:
            shown.add(fitting[0].memory_mb)
        for row in group:
            if row.memory_mb not in shown:
                continue
            tokens = row.tokens_cny * 1000
            lines.append(
                f"| {cpu:g} | {row.memory_mb} MB | 1:{row.memory_mb / 1024 / cpu:.2f} | {row.wall_s:.3f} s | "
                f"{row.vcpu_s:,.1f} | {row.gb_s:,.1f} | {row.disk_gb_s:,.1f} | {row.cu:,.1f} | {row.fc_cny:.4f} | "
                f"{tokens:.4f} | {row.fc_cny / row.total_cny:.0%} | {row.batch_fc_cny:.4f} | "
                f"{'yes' if holds(row.memory_mb, peak_mb) else 'no'} |"
            )
    return lines


def recommend(results: list[SpecFigures], rows: list[Cost], peak_mb: float) -> list[str]:
    fastest = max(results, key=lambda f: f.cpu)
    best_wall = _median(fastest.paced["project"])
    lines = []
    keeping: list[Cost] = []
    for f in results:
        wall = _median(f.paced["project"])
        pace = wall <= 1.02 * _median(f.paced["naive"]) and wall <= 1.05 * best_wall
        fitting = [r for r in rows if r.cpu == f.cpu and holds(r.memory_mb, peak_mb)]
        if pace and fitting:
            keeping.append(fitting[0])
    if keeping:
        cheapest = min(keeping, key=lambda r: r.fc_cny)
        lines.append(
            f"- async triggers (timer, OSS, MNS): cpu {cheapest.cpu:g}, memorySize {cheapest.memory_mb}: the "
            f"cheapest measured spec that keeps pace (paced wall <= 1.02 x the naive port's at the same spec and "
            f"<= 1.05 x the project's at {fastest.cpu:g} vCPU) and holds the peak RSS with {HEADROOM:.0%} left: "
            f"{cheapest.fc_cny:.4f} CNY of FC per 1,000 answers."
        )
    else:
        lines.append("- async triggers: no measured spec both keeps pace and holds the peak")
    quick = [f for f in sorted(results, key=lambda f: f.cpu) if _median(f.cold["project"]) <= INTERACTIVE_COLD_S]
    chosen = quick[0] if quick else fastest
    memory = next((r.memory_mb for r in rows if r.cpu == chosen.cpu and holds(r.memory_mb, peak_mb)), None)
    lines.append(
        f"- interactive `s invoke`: cpu {chosen.cpu:g}, memorySize {memory}: the smallest measured spec whose cold "
        f"start is <= {INTERACTIVE_COLD_S:g} s ({_median(chosen.cold['project']):.2f} s)"
        + ("" if quick else f"; none was, so the fastest measured ({fastest.cpu:g} vCPU)")
        + "."
    )
    return lines


# ---- the run -----------------------------------------------------------------------------------------


def main(argv: list[str], prog: str = "python -m bench.run") -> int:
    import argparse

    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", required=True, help="comma list of vCPU specs, e.g. 0.05,0.35,1")
    parser.add_argument("--quick", action="store_true", help="one sample of each: to try the bench")
    args = parser.parse_args(argv)
    specs = parse_specs(args.cpu)
    counts = (1, 30, 1) if args.quick else (COLD_RUNS, WARM_CALLS, PACE_CALLS)
    started, load_before = time.time(), os.getloadavg()
    reason = quota_unavailable()
    if reason is not None:
        print(f"--cpu: no CPU quota can be set on this machine ({reason}); the per-spec figures are skipped.")
        return 0
    runtime = build.find_interpreter(run.RUNTIME)
    if runtime is None:
        sys.exit(f"bench needs a python{run.RUNTIME} (FC's runtime) for the cold starts; none found")
    pythons = {side: run.venv(side) for side in SIDES}
    versions = {side: run.installed(pythons[side], "dashscope") for side in SIDES}
    work = Path(tempfile.mkdtemp(prefix="fc-bench-spec-"))
    results: list[SpecFigures] = []
    quotas: list[str] = []
    try:
        with DashScopeStandIn(api_key=run.KEY) as standin:
            print(f"building the packages for python{run.RUNTIME} ({runtime}):", file=sys.stderr)
            packages = {
                "project": run.project_package(run.RUNTIME, work),
                "naive": run.naive_package("naive", work, runtime),
            }
            for side in SIDES:  # one unmeasured start each, without a quota: the page cache
                run.cold_start(runtime, packages[side], standin)
            imports = import_time(runtime, packages["project"])
            _progress(f"import index {imports.total_ms:.1f} ms, the handler's own {imports.own_ms:.1f} ms")
            peak = peak_rss(runtime, packages["project"], standin)
            _progress(f"peak RSS {peak['peak_mb']:.1f} MB")
            for cpu in specs:
                quota = Quota(cpu)
                try:
                    quotas.append(quota.describe())
                    results.append(measure(cpu, quota, runtime, packages, pythons, standin, counts))
                finally:
                    quota.close()
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(work)], check=False)
        shutil.rmtree(work, ignore_errors=True)

    rows = costs(results)
    usage = results[0].usage or {}
    per_answer = tokens_cny(results[0].usage)
    info = DEFAULT_MODELS[DEFAULT_MODEL]
    own_met = imports.own_ms < OWN_IMPORT_TARGET_MS
    lines = [
        f"Machine: {run.machine()}. Children under the quota: python{run.RUNTIME} ({run.platform_python(runtime)}) for "
        f"cold starts and the import, the sides' virtualenvs (python {sys.version.split()[0]}) for warm and paced; "
        f"dashscope {versions['project']} (project), {versions['naive']} (naive port). Run "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(started))} to {time.strftime('%H:%M UTC', time.gmtime())}, "
        f"{time.time() - started:.0f} s; load average {load_before[0]:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end{' (--quick: too few samples to quote)' if args.quick else ''}.",
        "CPU quotas: " + "; ".join(quotas) + " (removed after each spec).",
        "",
        *spec_table(results, counts[1], counts[2]),
        "",
        f"Import (`python{run.RUNTIME} -S -X importtime -c 'import index'` in the read-only package, median of "
        f"{imports.runs}): `import index` {imports.total_ms:.1f} ms, of which the handler's own modules "
        f"{imports.own_ms:.1f} ms (target < {OWN_IMPORT_TARGET_MS:g} ms: {'met' if own_met else '**not met**'}) and "
        f"standard modules {imports.stdlib_ms:.1f} ms (the SDK's import, in the initializer, loads every one of "
        f"them anyway); own / standard {imports.ratio:.2f}.",
        f"Peak RSS (ru_maxrss of the package under python{run.RUNTIME}, as FC runs it, with http.server loaded "
        f"for FC's runtime server): {peak['started_kib'] / 1024:.1f} MB initialized, "
        f"{peak['long_kib'] / 1024:.1f} MB after the longest {DEFAULT_MODEL} answer ({LONG_TOKENS:,} tokens, "
        f"{peak['answer_chars']:,} characters, streamed), {peak['batch_kib'] / 1024:.1f} MB after a batch of "
        f"{BATCH} such answers at once, {peak['tokenizer_kib'] / 1024:.1f} MB after a 50,000-character question "
        f"(over the byte bound, tokenizer loaded to count it: {peak['tokenizer_loaded']}): "
        f"peak {peak['peak_mb']:.1f} MB, {peak['peak_mb'] / 128:.0%} of 128 MB.",
        "",
        f"Cost per 1,000 answers of a realistic length (the paced answer: {usage.get('input_tokens', '?')} input and "
        f"{usage.get('output_tokens', '?')} output tokens, its wall time measured above at each cpu), on-demand, "
        f"tier-1 list price {CNY_PER_CU} CNY/CU; CU = vCPU-s x {CU_PER_VCPU_S:g} + memory GB-s x {CU_PER_GB_S:g} + "
        f"disk GB-s x {CU_PER_DISK_GB_S:g} + {1000 * CU_PER_INVOCATION:g} for the invocations. Tokens at "
        f"{DEFAULT_MODEL}'s {info.input_price} / {info.output_price} CNY per 1,000 input / output tokens: "
        f"{per_answer * 1000:.4f} CNY per 1,000 answers. Each memory row needs vCPU:GB within 1:1 to 1:4; "
        f"'holds the peak' leaves {HEADROOM:.0%} of it free.",
        "",
        *cost_table(rows, peak["peak_mb"]),
        "",
        "Recommendation:",
        *recommend(results, rows, peak["peak_mb"]),
        "",
        "Raw samples: "
        + "; ".join(
            f"{f.cpu:g} vCPU cold "
            + ", ".join(f"{s} " + "/".join(f"{v:.2f}" for v in f.cold[s]) for s in SIDES)
            + ", paced "
            + ", ".join(f"{s} " + "/".join(f"{v:.3f}" for v in f.paced[s]) for s in SIDES)
            for f in results
        ),
    ]
    report = "\n".join(lines)
    print(report)
    (run.BENCH / "results").mkdir(exist_ok=True)
    (run.BENCH / "results" / "spec.md").write_text(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], prog="python -m bench.spec"))
