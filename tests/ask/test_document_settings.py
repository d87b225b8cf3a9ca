"""The document settings: their defaults, s.yaml's values, their range, and the model table's `document`."""

from __future__ import annotations

import pytest

from handler import config
from handler.ask.models import DEFAULT_MODELS, parse_table
from handler.errors import InvalidConfig
from tests.support.s_yaml import load


def test_s_yaml_deploys_the_code_defaults():
    env = load()["resources"]["qwen"]["props"]["environmentVariables"]
    assert env["QWEN_DOCUMENT_MODEL"] == config.DEFAULT_DOCUMENT_MODEL
    assert env["QWEN_DOCUMENT_PROMPT"] == config.DEFAULT_DOCUMENT_PROMPT
    assert int(env["QWEN_OSS_MAX_DOCUMENT_BYTES"]) == config.MAX_DOCUMENT_BYTES
    assert config.DEFAULT_DOCUMENT_MODEL in env["QWEN_ALLOWED_MODELS"].split(",")


def test_defaults_and_overrides():
    settings = config.Settings.from_env({"DASHSCOPE_API_KEY": "sk-x"})
    assert (settings.document_model, settings.oss_max_document_bytes) == ("qwen-long", 150 * 1024 * 1024)
    assert settings.document_prompt == config.DEFAULT_DOCUMENT_PROMPT
    chosen = config.Settings.from_env(
        {
            "DASHSCOPE_API_KEY": "sk-x",
            "QWEN_DOCUMENT_MODEL": "qwen-long-latest",
            "QWEN_DOCUMENT_PROMPT": "总结",
            "QWEN_OSS_MAX_DOCUMENT_BYTES": "1000",
        }
    )
    assert (chosen.document_model, chosen.document_prompt, chosen.oss_max_document_bytes) == (
        "qwen-long-latest",
        "总结",
        1000,
    )


@pytest.mark.parametrize("value", ["0", str(150 * 1024 * 1024 + 1), "lots"])
def test_the_document_limit_is_range_checked(value):
    with pytest.raises(InvalidConfig, match="QWEN_OSS_MAX_DOCUMENT_BYTES"):
        config.Settings.from_env({"DASHSCOPE_API_KEY": "sk-x", "QWEN_OSS_MAX_DOCUMENT_BYTES": value})


def test_the_table_says_how_a_model_reads_documents():
    assert DEFAULT_MODELS["qwen-long"].document == "file" and DEFAULT_MODELS["qwen-long-latest"].document == "file"
    assert DEFAULT_MODELS["qwen-doc-turbo"].document == "url" and DEFAULT_MODELS["qwen-turbo"].document is None
    long = DEFAULT_MODELS["qwen-long"]
    assert (long.context_window, long.max_output, long.input_price, long.output_price) == (
        10_000_000,
        32_768,
        0.0005,
        0.002,
    )
    table = parse_table('{"my-long": {"api": "text", "document": "file"}, "qwen-long": {"document": null}}')
    assert table["my-long"].document == "file" and table["qwen-long"].document is None
    with pytest.raises(InvalidConfig, match="document"):
        parse_table('{"qwen-long": {"document": "fax"}}')
