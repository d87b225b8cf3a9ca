"""pyproject.toml names what `pip install .` installs: the function's code and the CLI, not tests or bench."""

from __future__ import annotations

from tests.support import ROOT

try:
    import tomllib
except ImportError:  # Python 3.10: pip vendors the same parser
    from pip._vendor import tomli as tomllib


def config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_handler_package_is_installed_and_nothing_else():
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "handler").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    setuptools = config()["tool"]["setuptools"]
    assert set(setuptools["packages"]) == found
    assert setuptools["py-modules"] == ["index"]
    assert "sample.png" in setuptools["package-data"]["handler.local"]


def test_the_console_script_is_the_cli():
    assert config()["project"]["scripts"] == {"qwen-fc": "handler.local.cli:run"}


def test_the_dependencies_are_requirements_txt():
    """The install's dependencies are requirements.txt's pins, one list in two places."""
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    pins = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    assert config()["project"]["dependencies"] == pins
