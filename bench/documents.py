"""Peak RSS of one instance answering a 100 MB PDF from OSS by file id, and the time spent waiting for parsing.

    .venv/bin/python -m bench.documents              # s.yaml's memorySize, a 100 MiB PDF, 3 polls: about 30 s
    .venv/bin/python -m bench.documents --mib 20     # a smaller document
    .venv/bin/python -m bench.documents --tokenizer  # the tokenizer loaded first, as on a long-lived instance

One fresh interpreter (bench/probe.py `document`) with s.yaml's memorySize as FC_FUNCTION_MEMORY_SIZE: it is
initialized (its peak RSS then is the baseline, measured in the same run), then answers one OSS event naming
a generated PDF of incompressible bytes, read from the local OSS stand-in and streamed into the local
DashScope stand-in's files API, which says "processing" to the first `--polls` retrieves before "processed"
(handler/ask/documents.py polls with backoff). Prints the peak RSS and its ratio to the baseline, the bound
(memorySize less 40 MB: the peak must stay under it, exit status 1 otherwise), and the seconds from the first
retrieve to the one that said "processed": the time spent waiting for parsing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys

import yaml

from bench import run
from handler.local.standin import DashScopeStandIn
from handler.local.standin_files import PATH as FILES_PATH
from handler.local.standin_oss import OssStandIn

BUCKET = "bench-docs"
MARGIN_MB = 40  # the bound: memorySize less 40 MB, for FC's runtime server and the page cache


def shipped() -> dict[str, int]:
    """memorySize and the largest document, as s.yaml deploys them."""
    props = yaml.safe_load((run.ROOT / "s.yaml").read_text())["resources"]["qwen"]["props"]
    env = props["environmentVariables"]
    return {"memory_mb": int(props["memorySize"]), "document_bytes": int(env["QWEN_OSS_MAX_DOCUMENT_BYTES"])}


def pdf(size: int) -> bytes:
    """A PDF of exactly `size` bytes: a valid header and trailer around incompressible bytes in a comment."""
    head = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n%"
    tail = b"\ntrailer\n<< /Size 3 /Root 1 0 R >>\nstartxref\n9\n%%EOF\n"
    return head + os.urandom(size - len(head) - len(tail)).replace(b"/", b"_") + tail


def measure(size: int, memory_mb: int, polls: int, *, tokenizer: bool = False) -> dict:
    data = pdf(size)
    digest = hashlib.sha256(data).hexdigest()[:16]
    with DashScopeStandIn(api_key=run.KEY, processing=polls) as standin, OssStandIn() as oss:
        key = "inbox/bench.pdf"
        stored = oss.put(BUCKET, key, data)
        del data
        obj = {"key": key, "eTag": stored.etag, "size": size}
        record = {"eventName": "ObjectCreated:PutObject", "eventSource": "acs:oss", "region": "cn-hangzhou",
                  "oss": {"bucket": {"name": BUCKET}, "object": obj}}  # fmt: skip
        env = {
            **run.probe_env(standin),
            "FC_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "QWEN_OSS_ENDPOINT": oss.url,
            "QWEN_OSS_BUCKETS": BUCKET,
            "QWEN_ALLOWED_MODELS": "qwen-turbo,qwen-long",
            "QWEN_DOCUMENT_MODEL": "qwen-long",
            **({"BENCH_TOKENIZER": "1"} if tokenizer else {}),
        }
        done = subprocess.run(
            [sys.executable, str(run.BENCH / "probe.py"), "project", "document", "1"],
            input=json.dumps({"events": [record]}).encode(),
            cwd=run.BENCH,
            env=env,
            capture_output=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"document probe failed: {done.stderr.decode(errors='replace')[-3000:]}")
        figures = json.loads(done.stdout.splitlines()[-1])
        seen = [r for r in standin.files.requests if r.method == "GET" and r.path.startswith(FILES_PATH + "/")]
        uploads = [r for r in standin.files.requests if r.method == "POST"]
        answered = standin.requests[-1].files if standin.requests else ""
    if len(uploads) != 1 or f"{size} bytes, sha256 {digest}" not in answered or len(seen) != polls + 1:
        raise RuntimeError(f"the document did not arrive whole, once: {len(uploads)} uploads, {answered!r}")
    figures["parsing_wait_s"] = seen[-1].at - seen[0].at
    return figures


def main(argv: list[str]) -> int:
    settings = shipped()
    parser = argparse.ArgumentParser(
        prog="python -m bench.documents", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mib", type=float, default=100, help="size of the PDF, MiB (default 100)")
    parser.add_argument("--memory", type=int, default=settings["memory_mb"], help="FC_FUNCTION_MEMORY_SIZE, MB")
    parser.add_argument("--polls", type=int, default=3, help="retrieves the stand-in answers 'processing' first")
    parser.add_argument(
        "--tokenizer",
        action="store_true",
        help="load the tokenizer first (a 50,000-character question), as a long-lived instance may have",
    )
    args = parser.parse_args(argv)
    size = int(args.mib * 1024 * 1024)
    if size > settings["document_bytes"]:
        parser.error(f"--mib: larger than s.yaml's QWEN_OSS_MAX_DOCUMENT_BYTES ({settings['document_bytes']:,})")
    figures = measure(size, args.memory, args.polls, tokenizer=args.tokenizer)
    baseline_mb, peak_mb = figures["started_kib"] / 1024, figures["document_kib"] / 1024
    loaded = f"{figures['tokenizer_kib'] / 1024:.1f} MB with the tokenizer loaded, " if args.tokenizer else ""
    bound = args.memory - MARGIN_MB
    print(
        f"python {sys.version.split()[0]}, FC_FUNCTION_MEMORY_SIZE={args.memory}: {baseline_mb:.1f} MB initialized "
        f"(baseline), {loaded}{peak_mb:.1f} MB after one OSS PDF of {size:,} bytes ({peak_mb / baseline_mb:.2f}x the "
        f"baseline, {figures['document_s']:.1f} s, of which {figures['parsing_wait_s']:.1f} s waiting for parsing "
        f"over {args.polls} polls); bound {bound} MB (memorySize less {MARGIN_MB}): "
        f"{'met' if peak_mb <= bound else 'NOT met'}"
    )
    print(json.dumps({**figures, "peak_mb": peak_mb, "ratio": peak_mb / baseline_mb, "bound_mb": bound}))
    return 0 if peak_mb <= bound else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
