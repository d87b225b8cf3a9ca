"""An instance answering images stays inside the shipped memorySize: one fresh interpreter (bench/probe.py
`images`, as FC runs it) with the tokenizer loaded, then one OSS event of the largest allowed images, read
from the OSS stand-in and asked of the DashScope stand-in; its peak RSS is measured by the process itself."""

from __future__ import annotations

from bench import images

MIB = 1024 * 1024


def test_three_largest_images_at_once_stay_under_the_shipped_memory_less_30_mb():
    shipped = images.shipped()
    figures = images.measure(3, shipped["image_bytes"], shipped["memory_mb"], shipped["concurrency"])
    peak_mb = figures["images_kib"] / 1024
    assert peak_mb <= shipped["memory_mb"] - images.MARGIN_MB, figures
