"""The CLI for people: --text, --pretty, --oss-file, quiet samples, and files read as the handler reads them."""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys

from handler.local import output
from handler.local.standin import EMULATED, EMULATED_REASONING
from tests.conftest import ROOT
from tests.support.processes import run_cli as run

GBK_QUESTION = "牛腩要炖多久?".encode("gbk")
CLEAN = {
    k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "QWEN_"))
}  # as tests/local/test_cli.run


def test_text_prints_only_the_answer():
    """--text: stdout is the answer's text and nothing else, in messages mode and in prompt mode."""
    for mode in ("messages", "prompt"):
        done = run("--offline", "--quiet", "--text", "--mode", mode, "你好")
        assert done.returncode == 0, done.stderr
        answer = done.stdout.decode()
        assert answer.startswith(EMULATED) and answer.rstrip("\n").endswith("你好"), answer
        assert answer.count("\n") == 1 and "status_code" not in answer


def test_text_sends_the_reasoning_to_stderr():
    """A thinking model's reasoning goes to stderr under --text; stdout keeps only the answer."""
    done = run("--offline", "--quiet", "--text", "--model", "qwen3.8-max", "你好")
    assert done.returncode == 0, done.stderr
    assert EMULATED_REASONING.encode() in done.stderr and b"reasoning:" in done.stderr
    assert EMULATED_REASONING.encode() not in done.stdout and done.stdout.startswith(EMULATED.encode())


def test_text_of_a_refusal_prints_the_reason_on_stderr_only():
    done = run("--offline", "--quiet", "--text", "-", stdin=b'{"prompt": 5}')
    assert done.returncode == 1 and done.stdout == b""
    assert b"InvalidRequest (400):" in done.stderr


def test_text_of_a_batch_gives_each_answer():
    """A batch (MNS queue via EventBridge) gives one answer per record, in order, a blank line between them."""
    sample = json.loads((ROOT / "events" / "mns-queue-batch.json").read_text())
    batch = []
    for n, question in enumerate(("第一个问题", "第二个问题")):
        record = copy.deepcopy(sample[0])
        record["id"] = f"{record['id']}-{n}"
        record["data"]["messageId"] = f"{record['data']['messageId']}-{n}"
        record["data"]["messageBody"] = question
        batch.append(record)
    done = run("--offline", "--quiet", "--text", "-", stdin=json.dumps(batch).encode())
    assert done.returncode == 0, done.stderr
    answers = done.stdout.decode().rstrip("\n").split("\n\n")
    assert len(answers) == 2 and all(a.startswith(EMULATED) for a in answers)
    assert answers[0].endswith("第一个问题") and answers[1].endswith("第二个问题")


def test_pretty_indents_the_same_json():
    done = run("--offline", "--quiet", "--pretty", "你好")
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode()
    assert text.startswith('{\n  "status_code": 200,') and "你好" in text  # indented, Chinese kept as is
    assert json.loads(text)["output"]["choices"][0]["message"]["content"].endswith("你好")


def test_text_and_pretty_exclude_each_other():
    done = run("--offline", "--text", "--pretty", "你好")
    assert done.returncode == 2 and b"not allowed with" in done.stderr


def test_an_oss_file_is_answered_as_an_upload_and_its_answer_file_printed(tmp_path):
    """--oss-file: the file goes through the OSS stand-in as an upload; stdout is the answer file written."""
    question = tmp_path / "beef.txt"
    question.write_text("牛腩要炖多久?", encoding="utf-8")
    done = run("--offline", "--oss-file", str(question))
    assert done.returncode == 0, done.stderr
    written = json.loads(done.stdout)
    assert written["status_code"] == 200 and "牛腩要炖多久?" in written["output"]["choices"][0]["message"]["content"]
    err = done.stderr.decode()
    assert "answer file: oss://qwen-questions/answers/questions/beef.txt.json" in err
    # The handler read it through OSS: its log line names the object and the answer's key.
    log = next(json.loads(line.split(" ", 1)[1]) for line in err.splitlines() if '"event":"question"' in line)
    assert log["source"] == "oss://qwen-questions/questions/beef.txt"
    assert log["answer_key"] == "oss://qwen-questions/answers/questions/beef.txt.json"


def test_an_oss_file_honours_the_output_prefix_and_text(tmp_path):
    question = tmp_path / "q.txt"
    question.write_text("你好", encoding="utf-8")
    done = run("--offline", "--text", "--oss-file", str(question), env={"QWEN_OSS_OUTPUT_PREFIX": "out/"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().startswith(EMULATED)
    assert b"answer file: oss://qwen-questions/out/questions/q.txt.json" in done.stderr


def test_a_gbk_oss_file_gets_its_refusal_written(tmp_path):
    """A file that is not UTF-8 is refused as a real upload is: the answer file holds the 415."""
    question = tmp_path / "gbk.txt"
    question.write_bytes(GBK_QUESTION)
    done = run("--offline", "--quiet", "--oss-file", str(question))
    assert done.returncode == 1
    written = json.loads(done.stdout)
    assert written["code"] == "ObjectNotText" and "iconv -f GBK -t UTF-8" in written["message"]


def test_a_missing_oss_file_is_a_usage_error(tmp_path):
    done = run("--offline", "--oss-file", str(tmp_path / "nothing.txt"))
    assert done.returncode == 2 and b"no such file" in done.stderr and done.stdout == b""
    done = run("--offline", "--oss-file", str(tmp_path), "and a question")
    assert done.returncode == 2 and b"not more than one" in done.stderr


def test_local_samples_do_not_warn_that_answers_are_kept_nowhere():
    """The CLI is not FC: timer and MNS samples print their answer and no answers_kept_nowhere WARNING."""
    for sample in ("timer.json", "timer-request.json", "mns-topic-json.json", "mns-queue-batch.json"):
        done = run("--offline", "--event-file", f"events/{sample}")
        assert done.returncode == 0, done.stderr
        assert b"answers_kept_nowhere" not in done.stderr and b"WARNING" not in done.stderr, sample
        assert b'"event":"question"' in done.stderr  # the other log lines are still shown


def test_the_refusal_sample_says_so():
    """events/oss-binary.json shows a 415 on purpose: running it says why, and that exit 1 is expected."""
    done = run("--offline", "--quiet", "--event-file", "events/oss-binary.json")
    assert done.returncode == 1
    assert json.loads(done.stdout)[0]["code"] == "ObjectNotText"
    assert b"note: events/oss-binary.json" in done.stderr and b"exit status 1 is expected" in done.stderr
    # An answered sample gets no such note.
    assert b"note:" not in run("--offline", "--quiet", "--event-file", "events/oss-question.json").stderr


def test_the_handler_names_gbk_and_iconv_for_bytes_that_are_not_utf8():
    done = run("--offline", "--quiet", "-", stdin=GBK_QUESTION)
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["status_code"] == 400 and result["code"] == "InvalidEncoding"
    assert "GBK" in result["message"] and "iconv -f GBK -t UTF-8" in result["message"]


def test_the_token_cli_reads_a_file_as_the_handler_does(tmp_path):
    """A GBK file: the handler's InvalidEncoding message with its iconv hint, no traceback; a BOM is fine."""
    gbk = tmp_path / "gbk.txt"
    gbk.write_bytes(GBK_QUESTION)
    done = run("tokens", "--file", str(gbk))
    assert done.returncode == 1 and b"Traceback" not in done.stderr
    handler = json.loads(run("--offline", "--quiet", "--event-file", str(gbk)).stdout)
    assert done.stdout == b""
    assert done.stderr.decode().strip() == f"the handler would refuse it: InvalidEncoding: {handler['message']}"
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbf" + "牛腩要炖多久?".encode())
    done = run("tokens", "--file", str(bom))
    assert done.returncode == 0 and b"verdict       fits" in done.stdout, done.stderr
    done = run("tokens", "--file", str(tmp_path / "missing.txt"))
    assert done.returncode == 2 and b"missing.txt: No such file" in done.stderr


def test_render_keeps_the_json_unless_asked():
    """Without --text or --pretty the handler's return value is printed byte for byte."""
    returned = '{"status_code":200,"output":{"text":"答"}}'
    err = io.StringIO()
    assert output.render(returned, text=False, pretty=False, err=err) == returned
    assert output.render(returned, text=True, pretty=False, err=err) == "答" and err.getvalue() == ""


def test_render_reads_multimodal_parts_and_partial_answers():
    """An answer given as parts ([{"text": ...}]) is joined; a PartialAnswer's text is printed, its reason on stderr."""
    result = {
        "status_code": 200,
        "code": "PartialAnswer",
        "message": "partial answer: the deadline",
        "output": {"choices": [{"message": {"content": [{"text": "一"}, {"image": "x"}, {"text": "二"}]}}]},
    }
    err = io.StringIO()
    assert output.render(json.dumps(result), text=True, pretty=False, err=err) == "一二"
    assert "PartialAnswer (200): partial answer: the deadline" in err.getvalue()


def test_gbk_bytes_typed_as_the_question_get_the_handlers_400_not_a_traceback(tmp_path):
    """`python -m handler --offline "$(cat gbk.txt)"`: argv's bytes reach the handler as typed (also with --image)."""
    for extra in ((), ("--image", str(ROOT / "handler" / "local" / "sample.png"))):
        done = subprocess.run(
            [
                sys.executable.encode(),
                b"-m",
                b"handler",
                b"--offline",
                b"--quiet",
                *map(os.fsencode, extra),
                GBK_QUESTION,
            ],
            cwd=ROOT,
            capture_output=True,
            timeout=60,
            env=CLEAN,
        )
        assert done.returncode == 1 and b"Traceback" not in done.stderr, done.stderr[-800:]
        result = json.loads(done.stdout)
        assert result["code"] == "InvalidEncoding" and "iconv -f GBK -t UTF-8" in result["message"]


def test_an_oss_file_whose_name_is_not_utf8_is_a_usage_error(tmp_path):
    question = tmp_path.joinpath(os.fsdecode(b"\xb9\xfe.txt"))
    question.write_text("你好", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "handler", "--offline", "--oss-file", str(question)],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2 and b"Traceback" not in done.stderr, done.stderr[-800:]
    assert b"is not UTF-8" in done.stderr and b"rename it" in done.stderr and done.stdout == b""


def test_quiet_leaves_stderr_empty_for_an_answered_oss_file(tmp_path):
    question = tmp_path / "q.txt"
    question.write_text("你好", encoding="utf-8")
    done = run("--offline", "--quiet", "--text", "--oss-file", str(question))
    assert done.returncode == 0 and done.stdout.decode().startswith(EMULATED)
    assert done.stderr == b""
