"""Peak RSS of the worst case the shipped settings allow for images, in a separate process, as FC runs it.

    .venv/bin/python -m bench.images                # s.yaml's settings: about 30 s
    .venv/bin/python -m bench.images --images 3     # another event: 3 images of the largest size

One fresh interpreter (bench/probe.py `images`) with s.yaml's memorySize as FC_FUNCTION_MEMORY_SIZE,
its QWEN_OSS_MAX_IMAGE_BYTES and QWEN_BATCH_CONCURRENCY: it loads the tokenizer with a 50,000-character
question (it stays loaded, as on a long-lived instance), then answers one OSS event of as many images
as the batch answers at once, each of the largest allowed size, read from the local OSS stand-in and
asked of the local DashScope stand-in. Prints ru_maxrss after each step and the bound: the peak must
stay under memorySize less 30 MB (exit status 1 otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import yaml

from bench import run
from handler.local.standin import DashScopeStandIn
from handler.local.standin_oss import OssStandIn

BUCKET = "bench-photos"
MARGIN_MB = 30  # left free under memorySize for FC's runtime server and the page cache


def shipped() -> dict[str, int]:
    """memorySize, the largest image and the batch concurrency, as s.yaml deploys them."""
    props = yaml.safe_load((run.ROOT / "s.yaml").read_text())["resources"]["qwen"]["props"]
    env = props["environmentVariables"]
    return {
        "memory_mb": int(props["memorySize"]),
        "image_bytes": int(env["QWEN_OSS_MAX_IMAGE_BYTES"]),
        "concurrency": int(env["QWEN_BATCH_CONCURRENCY"]),
    }


def png(size: int, seed: int) -> bytes:
    """A PNG of exactly `size` bytes: a valid header, then incompressible bytes (as a photo's are)."""
    header = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x10\x00\x00\x00\x10\x00\x08\x06\x00\x00\x00"
    return header + os.urandom(size - len(header) - 1) + bytes([seed % 256])


def measure(count: int, size: int, memory_mb: int, concurrency: int) -> dict:
    with DashScopeStandIn(api_key=run.KEY) as standin, OssStandIn() as oss:
        standin.keep_requests = False
        records = []
        for i in range(count):
            key = f"photos/bench-{i}.png"
            stored = oss.put(BUCKET, key, png(size, i))
            obj = {"key": key, "eTag": stored.etag, "size": size}
            records.append({"eventName": "ObjectCreated:PutObject", "eventSource": "acs:oss", "region": "cn-hangzhou",
                            "oss": {"bucket": {"name": BUCKET}, "object": obj}})  # fmt: skip
        env = {
            **run.probe_env(standin),
            "FC_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "QWEN_OSS_ENDPOINT": oss.url,
            "QWEN_OSS_BUCKETS": BUCKET,
            "QWEN_OSS_MAX_IMAGE_BYTES": str(size),
            "QWEN_BATCH_CONCURRENCY": str(concurrency),
        }
        done = subprocess.run(
            [sys.executable, str(run.BENCH / "probe.py"), "project", "images", str(count)],
            input=json.dumps({"events": records}).encode(),
            cwd=run.BENCH,
            env=env,
            capture_output=True,
            timeout=600,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"images probe failed: {done.stderr.decode(errors='replace')[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def main(argv: list[str]) -> int:
    settings = shipped()
    parser = argparse.ArgumentParser(
        prog="python -m bench.images", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=settings["concurrency"], help="images in the one OSS event")
    parser.add_argument("--size", type=int, default=settings["image_bytes"], help="bytes of each image")
    parser.add_argument("--memory", type=int, default=settings["memory_mb"], help="FC_FUNCTION_MEMORY_SIZE, MB")
    args = parser.parse_args(argv)
    figures = measure(args.images, args.size, args.memory, settings["concurrency"])
    peak_mb = figures["images_kib"] / 1024
    bound = args.memory - MARGIN_MB
    print(
        f"python {sys.version.split()[0]}, FC_FUNCTION_MEMORY_SIZE={args.memory}, QWEN_BATCH_CONCURRENCY="
        f"{settings['concurrency']}: {figures['started_kib'] / 1024:.1f} MB initialized, "
        f"{figures['tokenizer_kib'] / 1024:.1f} MB with the tokenizer loaded, {peak_mb:.1f} MB after one OSS event "
        f"of {args.images} images of {args.size:,} bytes ({figures['images_s']:.1f} s); bound {bound} MB "
        f"(memorySize less {MARGIN_MB}): {'met' if peak_mb <= bound else 'NOT met'}"
    )
    print(json.dumps({**figures, "peak_mb": peak_mb, "bound_mb": bound}))
    return 0 if peak_mb <= bound else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
