"""s.yaml as the tests read it: the file itself, and its commented trigger examples uncommented."""

from __future__ import annotations

import yaml

from tests.support import ROOT


def load() -> dict:
    return yaml.safe_load((ROOT / "s.yaml").read_text())


def commented_triggers() -> list[dict]:
    """The trigger examples as they are once uncommented."""
    lines = (ROOT / "s.yaml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "# triggers:")
    block = []
    for line in lines[start:]:
        if not line.strip().startswith("#"):
            break
        block.append(line.replace("# ", "", 1) if line.strip() != "#" else "")
    return yaml.safe_load("\n".join(block))["triggers"]
