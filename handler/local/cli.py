"""`python -m handler`: invoke index.handler locally, the way FC would, and print what it returns.

Exit status: 0 when every result has status 200, 1 otherwise (or when the handler raised, or a variable
the CLI reads is one the handler refuses: its InvalidConfig message), 2 on usage errors such as a missing
API key, an empty question or an event file that cannot be read.

The environment is s.yaml's environmentVariables (the allowlist, the mode, the timeouts ...), so a
local run behaves as the deployed function does; a variable set in the shell overrides s.yaml's.

stderr shows the handler's own JSON log lines (`--quiet` hides them, `--verbose` adds the SDK's and
the other libraries' records, tracebacks included) and, when the handler raised, one line saying why.
stdout shows the JSON the handler returned (`--pretty` indents it), or only the answer (`--text`).
`--oss-file PATH` answers a local file as if it had been uploaded to the OSS trigger's bucket and prints
the answer file the handler wrote. `python -m handler tokens|files|batches --help` are commands of their own.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn, TextIO
from urllib.parse import urlsplit, urlunsplit

from handler.fc_context import Credentials
from handler.local import output

OFFLINE_KEY = "sk-offline-standin-0000"
OFFLINE_BUCKETS = "qwen-questions,testbucket"  # the buckets of events/oss-question.json and events/oss.json


@dataclass(frozen=True)
class LocalFunction:
    name: str = "qwen-local"
    handler: str = "index.handler"
    memory: int = 512
    timeout: float = 120.0


@dataclass(frozen=True)
class LocalContext:
    """The attributes of FC's python context that the handler reads, filled from this machine."""

    request_id: str = field(default_factory=lambda: f"local-{uuid.uuid4()}")
    function: LocalFunction = field(default_factory=LocalFunction)
    credentials: Credentials | None = None
    region: str = "local"
    account_id: str = "local"

    @classmethod
    def from_env(cls, timeout: float) -> LocalContext:
        key_id = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID")
        credentials = (
            Credentials(
                key_id,
                os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ""),
                os.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN"),
            )
            if key_id
            else None
        )
        region = os.environ.get("FC_REGION", "local")
        return cls(function=LocalFunction(timeout=timeout), credentials=credentials, region=region)


EXAMPLES = (
    'python -m handler "如何做西红柿炖牛腩?"',
    "python -m handler --offline --event-file events/question.json",
    'python -m handler --offline --image handler/local/sample.png "what is this?"',
    "echo 你好 | python -m handler --offline",
    "python -m handler --offline --text --event-file events/conversation.json",
    "python -m handler --offline --oss-file question.txt",
    'python -m handler --offline --document report.pdf "这份报告的结论是什么?"',
    "python -m handler tokens --help",
    "python -m handler files --purge",
    "python -m handler batches --cancel questions/big.jsonl",
)
NETWORK_CODES = frozenset({"ConnectionError", "ConnectTimeout"})
# Samples in events/ that show a refusal on purpose, and why: said on stderr when one is run.
REFUSAL_SAMPLES = {
    "oss-binary.json": (
        "ObjectNotText",
        "events/oss-binary.json uploads a .zip, which is neither a text question nor a supported image, so "
        "the function refuses it with 415 ObjectNotText and writes that refusal as the answer file; the exit "
        "status 1 is expected. For a text file, try events/oss-question.json or --oss-file PATH.",
    ),
}
# The CLI is not FC: its answers are printed right here, so the deployed function's warning that a timer
# or MNS answer is kept nowhere does not apply to a local run.
NOT_FOR_THE_CLI = ('{"event":"answers_kept_nowhere"',)


class UsageError(Exception):
    """A mistake in how the CLI was called: its message is printed and the exit status is 2."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m handler",
        description=(
            "Ask Qwen through the FC handler on this machine, as an FC invocation would. The function's "
            "variables are read from s.yaml's environmentVariables (QWEN_ALLOWED_MODELS, QWEN_MODE, ...); "
            "the shell's environment overrides them (--no-s-yaml: the shell's alone)."
        ),
        epilog="examples:\n" + "\n".join(f"  {example}" for example in EXAMPLES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "question",
        nargs="*",
        help="the question (words are joined); '-', or none with stdin a pipe or a file, reads the event from stdin",
    )
    p.add_argument("--event-file", metavar="PATH", help="send this file's bytes as the event")
    p.add_argument(
        "--oss-file",
        metavar="PATH",
        help="answer this local file as if uploaded to the OSS trigger's bucket (through a local OSS stand-in); "
        "prints the answer file the handler wrote",
    )
    p.add_argument(
        "--document",
        metavar="PATH",
        help="ask QWEN_DOCUMENT_MODEL (qwen-long, by file id) about this local PDF, DOCX, XLSX, PPTX, EPUB or MOBI, "
        "streamed from the file; the words are the question (none: QWEN_DOCUMENT_PROMPT); --model picks the "
        "document model",
    )
    p.add_argument("--mode", choices=["messages", "prompt"], help="override QWEN_MODE")
    p.add_argument(
        "--model",
        help="override QWEN_MODEL; a model QWEN_ALLOWED_MODELS lacks is answered here, with a note that the "
        "deployed function would refuse it",
    )
    p.add_argument("--offline", action="store_true", help="answer from a local DashScope stand-in: no key, no network")
    p.add_argument(
        "--image",
        metavar="PATH",
        action="append",
        help="send this local image with the question (PNG, JPEG, WEBP, GIF, BMP); may be repeated",
    )
    p.add_argument(
        "--no-s-yaml", action="store_true", help="do not read s.yaml's environmentVariables: the shell's alone"
    )
    p.add_argument("--timeout", type=float, default=120.0, help="the function timeout to emulate, in seconds")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument(
        "--text", action="store_true", help="print only the answer (reasoning and refusals go to stderr)"
    )
    shown.add_argument("--pretty", action="store_true", help="indent the JSON")
    p.add_argument("--quiet", action="store_true", help="print no log lines on stderr, only a failure's reason")
    p.add_argument(
        "--verbose",
        action="store_true",
        help="also print the SDK's and other libraries' log records, and the traceback of an internal_error "
        "(an unexpected exception: its type, module and traceback)",
    )
    return p


def run() -> NoReturn:
    """`python -m handler` and the console script `qwen-fc`: main(), with Ctrl-C said in one line."""
    try:
        status = main()
    except KeyboardInterrupt:
        _interrupted()
    sys.exit(status)


def _interrupted() -> NoReturn:
    """Exit 130 (128 + SIGINT) with one line and no traceback; os._exit, so no worker thread is waited for
    and a buffered, half-written stdout is dropped rather than flushed."""
    sys.stderr.write("\ninterrupted\n" if _mid_line() else "interrupted\n")
    sys.stderr.flush()
    os._exit(130)


def _mid_line() -> bool:
    # An answer streaming to the terminal leaves the cursor mid-line: the notice starts on a line of its own.
    return sys.stdout.isatty() and sys.stderr.isatty()


def main(argv: Sequence[str] | None = None, *, stdin: Any = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["tokens"]:
        from handler.local import token_cli

        return token_cli.main(argv[1:], out=out)
    if argv[:1] == ["files"]:
        from handler.local import files_cli

        return files_cli.main(argv[1:], out=out)
    if argv[:1] == ["batches"]:
        from handler.local import batches_cli

        return batches_cli.main(argv[1:], out=out)
    args = parser().parse_args(argv)
    from handler.errors import InvalidConfig
    from handler.local import deployed_env

    if not args.no_s_yaml:
        deployed_env.apply(os.environ, deployed_env.variables())  # first: --image reads the deployed image limit
        _say_which_s_yaml(quiet=args.quiet)
    try:
        _check_model(args)
        document = _document(args)
        event = _event(args, stdin or sys.stdin.buffer)
        oss_file = _oss_file(args)
        if args.timeout <= 0:
            raise UsageError("--timeout must be positive")
    except UsageError as error:
        print(error, file=sys.stderr)
        return 2
    except InvalidConfig as error:  # what the handler would return for every event: said as it says it
        print(f"{error.code}: {error.message}", file=sys.stderr)
        return 1
    if args.mode:
        os.environ["QWEN_MODE"] = args.mode
    if args.model:
        _use_model(args.model, quiet=args.quiet)
    _log_to_stderr(quiet=args.quiet, verbose=args.verbose)

    standins: list[Any] = []
    context = LocalContext.from_env(args.timeout)
    if args.offline:
        from handler.local.standin import DashScopeStandIn
        from handler.local.standin_oss import OssStandIn

        standins = [DashScopeStandIn(api_key=OFFLINE_KEY).start(), OssStandIn(emulate_missing=True).start()]
        # The stand-ins are on this machine: a configured http(s)_proxy must not carry their requests
        # (requests and oss2 read NO_PROXY/no_proxy; a proxy would answer for 127.0.0.1 itself).
        _bypass_proxies_for_loopback()
        # A real key never goes to a stand-in: both endpoints and all credentials are replaced.
        os.environ.update(
            DASHSCOPE_API_KEY=OFFLINE_KEY,
            DASHSCOPE_HTTP_BASE_URL=standins[0].url,
            QWEN_OSS_ENDPOINT=standins[1].url,
        )
        # The sample events' buckets (events/oss*.json), so the samples are answered offline as a
        # deployment listing them would; a QWEN_OSS_BUCKETS of your own is kept, to try it offline.
        if not os.environ.get("QWEN_OSS_BUCKETS", "").strip():
            os.environ["QWEN_OSS_BUCKETS"] = OFFLINE_BUCKETS
        context = replace(context, credentials=Credentials("offline-access-key", "offline-secret-0000"))
        _hold_sample_files(standins[1], args.event_file)
    elif not os.environ.get("DASHSCOPE_API_KEY", "").strip():
        print(
            "DASHSCOPE_API_KEY is not set. Export your DashScope API key "
            "(export DASHSCOPE_API_KEY=sk-...), or add --offline to try it without one.",
            file=sys.stderr,
        )
        return 2

    uploaded = None
    if oss_file is not None:
        standins, context, uploaded, event = _upload(oss_file, standins, context, quiet=args.quiet)

    session = _session(args, event, out, oss_file if document is None else document)
    try:
        if document is not None:
            from handler.local.document import ask

            returned = ask(document, " ".join(args.question), context)
        else:
            returned = session.handle(event, context)
        if uploaded is not None:
            if args.offline and _submitted(returned):
                returned = _collect(session, context, quiet=args.quiet)
            returned = _answer_file(standins[-1], uploaded, returned, quiet=args.quiet)
    except Exception as error:  # noqa: BLE001  # FC would mark the invocation failed; so do we
        print(_failure(error), file=sys.stderr)
        return 1
    finally:
        for standin in standins:
            standin.stop()
    shown = output.render(returned, text=args.text, pretty=args.pretty, err=sys.stderr, reasoning=not session.streamed)
    if session.streamed:
        print(file=out)  # the answer is on the terminal already: end its line
    elif shown or not args.text:  # --text of a refusal: nothing on stdout, the reason is on stderr
        print(shown, file=out)
    _summarize(args, session)
    _say_if_a_refusal_sample(args.event_file, returned)
    return 0 if _all_ok(returned) else 1


def _check_model(args: argparse.Namespace) -> None:
    """--model's checks before anything starts: a typo of a known model stops with "did you mean", and a
    text-only model does not take --image (the handler would answer with QWEN_VISION_MODEL instead)."""
    if not args.model:
        return
    from handler.ask.models import MULTIMODAL, likely_meant, parse_table
    from handler.local import deployed_env

    table = parse_table(os.environ.get("QWEN_MODEL_TABLE", ""))  # InvalidConfig as the handler's
    known = {**dict.fromkeys(_allowed()), **table}
    meant = None if args.model in known else likely_meant(args.model, known)
    if meant is not None:
        raise UsageError(
            f"--model {args.model}: no such model in the model table or QWEN_ALLOWED_MODELS; did you mean {meant}? "
            "(to use the name as typed, add it to QWEN_MODEL_TABLE)"
        )
    info = table.get(args.model)
    if args.image and info is not None and info.api is not None and info.api != MULTIMODAL:
        vision = deployed_env.setting("QWEN_VISION_MODEL", "vision_model")
        raise UsageError(
            f"--model {args.model} answers text only and cannot take --image: drop --model to have the image "
            f"answered by QWEN_VISION_MODEL ({vision}), or name a vision model such as qwen3-vl-plus"
        )


def _allowed() -> list[str]:
    return [name.strip() for name in os.environ.get("QWEN_ALLOWED_MODELS", "").split(",") if name.strip()]


def _use_model(model: str, *, quiet: bool) -> None:
    """--model as QWEN_MODEL; allowed here even when the deployment's allowlist lacks it, saying so once."""
    os.environ["QWEN_MODEL"] = model
    allowed = _allowed()
    if not allowed or model in allowed:
        return
    os.environ["QWEN_ALLOWED_MODELS"] = ",".join([*allowed, model])
    if not quiet:
        print(
            f"note: {model} is not in QWEN_ALLOWED_MODELS: answered here, but the deployed function would refuse "
            f"it; add it to QWEN_ALLOWED_MODELS in s.yaml to allow it there",
            file=sys.stderr,
        )


def _session(args: argparse.Namespace, event: bytes, out: TextIO, oss_file: Any) -> Any:
    """How the handler is called: --text on a terminal shows one question's answer as it streams."""
    from handler.local import live

    if not args.text:
        return live.Session(None, sys.stderr)
    from handler.events.decode import decode

    one_question = oss_file is None and not decode(event).batch
    return live.Session(out if one_question and out.isatty() else None, sys.stderr)


def _summarize(args: argparse.Namespace, session: Any) -> None:
    """--text's last line on stderr: model, tokens, cost and seconds."""
    summary = session.summary() if args.text and not args.quiet else None
    if summary:
        print(summary, file=sys.stderr)


def _reads_stdin(args: argparse.Namespace, stdin: Any) -> bool:
    """'-', or nothing else named while stdin is a pipe or a file (not a terminal)."""
    if args.question == ["-"]:
        return True
    named = bool(args.question) or args.event_file is not None or getattr(args, "oss_file", None) is not None
    isatty = getattr(stdin, "isatty", None)
    return not named and callable(isatty) and not isatty()


def _say_which_s_yaml(*, quiet: bool) -> None:
    """Name the s.yaml read when it is not the current directory's (qwen-fc run from elsewhere), or say none was."""
    from pathlib import Path

    from handler.local import deployed_env

    found = deployed_env.project_file("s.yaml")
    if quiet or (found is not None and found.parent == Path.cwd()):
        return
    said = f"read {found}" if found is not None else "found no s.yaml: the shell's variables alone"
    print(f"note: {said}", file=sys.stderr)


def _event_path(given: str, *, quiet: bool) -> str:
    """--event-file as given, or, when a relative path is not here, the project's (events/conversation.json)."""
    import os.path

    from handler.local import deployed_env

    if os.path.isabs(given) or os.path.exists(given):
        return given
    found = deployed_env.project_file(given)
    if found is None:
        return given
    if not quiet:
        print(f"note: --event-file {given}: read {found}", file=sys.stderr)
    return str(found)


def _bypass_proxies_for_loopback() -> None:
    """Add 127.0.0.1 and localhost to NO_PROXY and no_proxy, keeping whatever they already list."""
    for name in ("NO_PROXY", "no_proxy"):
        listed = [host.strip() for host in os.environ.get(name, "").split(",") if host.strip()]
        os.environ[name] = ",".join([*listed, *(h for h in ("127.0.0.1", "localhost") if h not in listed)])


def _oss_file(args: argparse.Namespace) -> tuple[bytes, str] | None:
    """The --oss-file's bytes and name, read before anything starts; UsageError when it cannot be read."""
    if args.oss_file is None:
        return None
    from handler.local import oss_file

    try:
        data, name = oss_file.read(args.oss_file)
    except FileNotFoundError:
        raise UsageError(f"--oss-file {args.oss_file}: no such file") from None
    except OSError as error:
        raise UsageError(f"--oss-file {args.oss_file}: cannot read it ({error.strerror})") from None
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # argv's surrogateescape: the name's bytes are not UTF-8
        raise UsageError(
            f"--oss-file: the file's name {name!r} is not UTF-8, and OSS object names are; rename it "
            "(a GBK name: convmv -f gbk -t utf-8 --notest FILE)"
        ) from None
    return data, name


def _upload(file: tuple[bytes, str], standins: list[Any], context: LocalContext, *, quiet: bool) -> tuple[Any, ...]:
    """Put the file into the OSS stand-in (started here unless --offline did), as the trigger's upload."""
    from handler.local import oss_file
    from handler.local.standin_oss import OssStandIn

    oss = next((s for s in standins if isinstance(s, OssStandIn)), None)
    if oss is None:
        # With a real key: DashScope answers, the bucket is the local stand-in; no real OSS is touched.
        oss = OssStandIn().start()
        os.environ["QWEN_OSS_ENDPOINT"] = oss.url
        context = replace(context, credentials=Credentials("offline-access-key", "offline-secret-0000"))
    standins = [s for s in standins if s is not oss] + [oss]
    oss.emulate_missing = False  # the one object the event names is held: any other read finds what was written
    if context.credentials is not None:
        # The url route's signed URLs are verified by the stand-in, as OSS verifies them.
        creds = context.credentials
        oss.accept(creds.access_key_id, creds.access_key_secret, creds.security_token)
    bucket = oss_file.bucket()
    if not os.environ.get("QWEN_OSS_BUCKETS", "").strip() or os.environ["QWEN_OSS_BUCKETS"] == OFFLINE_BUCKETS:
        os.environ["QWEN_OSS_BUCKETS"] = bucket
    done = oss_file.upload(oss, *file, into=bucket)
    if not quiet:
        print(f"uploaded {file[1]} as oss://{done.bucket}/{done.key} (local OSS stand-in)", file=sys.stderr)
    return standins, context, done, done.event


def _hold_sample_files(oss: Any, event_file: str | None) -> None:
    """An OSS sample of events/ whose object is a file of events/ too (oss-questions-jsonl.json names
    questions.jsonl): the stand-in holds those bytes under the event's key, as the bucket would."""
    from pathlib import Path

    samples = Path(__file__).resolve().parents[2] / "events"
    if event_file is None or Path(event_file).resolve().parent != samples:
        return
    try:
        records = json.loads(Path(event_file).read_text(encoding="utf-8")).get("events", [])
    except (OSError, ValueError, AttributeError):
        return
    for record in records:
        place = record.get("oss", {}) if isinstance(record, dict) else {}
        bucket, key = place.get("bucket", {}).get("name"), place.get("object", {}).get("key")
        held = samples / str(key).rsplit("/", 1)[-1]
        if isinstance(bucket, str) and isinstance(key, str) and held.suffix == ".jsonl" and held.is_file():
            oss.put(bucket, key, held.read_bytes())


def _submitted(returned: str) -> bool:
    """Whether the handler handed a .jsonl file to the Batch API (its summary's code)."""
    try:
        results = json.loads(returned)
    except ValueError:
        return False
    results = results if isinstance(results, list) else [results]  # an OSS event: one result per record
    return any(isinstance(result, dict) and result.get("code") == "BatchSubmitted" for result in results)


COLLECT_ROUNDS = 12  # the stand-in moves a job one state per look: validating to completed takes a few


def _collect(session: Any, context: Any, *, quiet: bool) -> str:
    """Run the collect timer (events/timer-collect.json) until it writes the answers, as s.yaml's timer would
    every 5 minutes; offline only, where the stand-in finishes a job in a few looks."""
    from handler.local import oss_file

    returned = ""
    for round_ in range(1, COLLECT_ROUNDS + 1):
        returned = session.handle(oss_file.COLLECT_EVENT, context)
        collected = (json.loads(returned).get("output") or {}).get("collected")
        if not quiet:
            print(f"collect timer, run {round_}: {json.loads(returned).get('message')}", file=sys.stderr)
        if collected:
            break
    return returned


def _answer_file(oss: Any, done: Any, returned: str, *, quiet: bool) -> str:
    """The answer file the handler wrote for --oss-file, named on stderr; the return value if none was written."""
    from handler.local import oss_file

    written = oss_file.answer_file(oss, done)
    if written is None:
        print(f"no answer file was written at oss://{done.bucket}/{done.answer_key()}", file=sys.stderr)
        return returned
    if not quiet:
        print(f"answer file: oss://{done.bucket}/{done.answer_key()}", file=sys.stderr)
    return written


def _say_if_a_refusal_sample(event_file: str | None, returned: str) -> None:
    """When a sample of events/ that shows a refusal on purpose is run and refused, say so on stderr."""
    if event_file is None:
        return
    from pathlib import Path

    path = Path(event_file).resolve()
    if path.parent != Path(__file__).resolve().parents[2] / "events" or path.name not in REFUSAL_SAMPLES:
        return
    code, why = REFUSAL_SAMPLES[path.name]
    try:
        value = json.loads(returned)
    except ValueError:
        return
    results = value if isinstance(value, list) else [value]
    if any(isinstance(r, dict) and r.get("code") == code for r in results):
        print(f"note: {why}", file=sys.stderr)


def _event(args: argparse.Namespace, stdin: Any) -> bytes:
    """The event bytes the arguments name; UsageError when they name none, two, or an empty question."""
    if args.image:
        return _image_event(args)
    if args.document is not None:
        return b""  # asked from the file itself (_document), not as an event
    if _reads_stdin(args, stdin):
        args.question = ["-"]
    sources = sum([bool(args.question), args.event_file is not None, getattr(args, "oss_file", None) is not None])
    if sources != 1:
        raise UsageError("give a question, '-' for stdin, --event-file PATH or --oss-file PATH (not more than one)")
    if getattr(args, "oss_file", None) is not None:
        return b""  # built once the OSS stand-in holds the file (_upload)
    if args.event_file is not None:
        try:
            with open(_event_path(args.event_file, quiet=args.quiet), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise UsageError(f"--event-file {args.event_file}: no such file") from None
        except OSError as error:
            raise UsageError(f"--event-file {args.event_file}: cannot read it ({error.strerror})") from None
    event = stdin.read() if args.question == ["-"] else _typed(args.question)
    if _is_empty(event):
        # The handler's own message suggests `s invoke -e`, which is for the deployed function.
        raise UsageError(
            "the question is empty: give it as arguments, '-' to read it from stdin, "
            "--event-file PATH or --oss-file PATH"
        )
    return event


def _typed(words: list[str]) -> bytes:
    """The question's bytes as typed. Python decodes argv with surrogateescape, so bytes that are not
    UTF-8 (a GBK terminal, `$(cat gbk.txt)`) come back unchanged and get the handler's own 400."""
    return " ".join(words).encode("utf-8", "surrogateescape")


def _image_event(args: argparse.Namespace) -> bytes:
    """A request with the --image files as data: URIs and the words as its text: the one place a local
    file becomes part of a question, because the user named it on their own command line."""
    from handler.events import images
    from handler.local import deployed_env

    if args.event_file is not None or args.question == ["-"]:
        raise UsageError("--image goes with a question given as arguments, not with --event-file or '-'")
    limit = deployed_env.setting("QWEN_OSS_MAX_IMAGE_BYTES", "max_image_bytes")  # InvalidConfig as the handler's
    parts: list[dict[str, str]] = []
    for path in args.image:
        try:
            with open(path, "rb") as f:
                data = f.read(limit + 1)
        except OSError as error:
            raise UsageError(f"--image {path}: cannot read it ({error.strerror})") from None
        if len(data) > limit:
            raise UsageError(f"--image {path}: larger than {limit} bytes (QWEN_OSS_MAX_IMAGE_BYTES)")
        sniffed = images.sniff(data)
        if sniffed.kind is None or sniffed.corrupt:
            raise UsageError(f"--image {path}: not a PNG, JPEG, WEBP, GIF or BMP image")
        parts.append({"image": images.data_uri(data, sniffed)})
    typed = _typed(args.question)
    try:
        text = typed.decode("utf-8")
    except UnicodeDecodeError:
        return typed  # not UTF-8: the handler refuses it, naming GBK and iconv, before any image is sent
    parts.append({"text": text})  # empty: QWEN_IMAGE_PROMPT is asked
    request: dict[str, Any] = {"messages": [{"role": "user", "content": parts}]}
    if args.model:
        request["model"] = args.model
    return json.dumps(request, ensure_ascii=False).encode()


def _document(args: argparse.Namespace) -> Any:
    """--document's file, checked (a document, within the limit, a file-route model) before anything starts."""
    if args.document is None:
        return None
    if args.image or args.event_file is not None or args.oss_file is not None or args.question == ["-"]:
        raise UsageError(
            "--document goes with a question given as arguments, not with --image, --event-file, --oss-file or '-'"
        )
    from handler.local import document

    if args.model:
        os.environ["QWEN_DOCUMENT_MODEL"] = args.model  # --model names the model that reads the document
    try:
        " ".join(args.question).encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError("--document: the question is not UTF-8; type it in a UTF-8 terminal") from None
    try:
        document.check_route()
        return document.source(args.document)
    except document.DocumentUsage as error:
        raise UsageError(str(error)) from None


def _is_empty(event: bytes) -> bool:
    from handler.events.decode import EMPTY_HINT, decode

    decoded = decode(event)
    record = decoded.records[0]
    return not decoded.batch and getattr(record, "code", None) == "EmptyEvent" and record.message == EMPTY_HINT


def _failure(error: Exception) -> str:
    """One line for an invocation that raised: what happened and what to try."""
    from handler.errors import TransientUpstreamError

    if isinstance(error, TransientUpstreamError) and error.code in NETWORK_CODES:
        return (
            f"DashScope could not be reached at {_endpoint()} ({error.code} after {error.attempts} attempts): "
            "check the network and DASHSCOPE_HTTP_BASE_URL, or add --offline to answer from the local stand-in"
        )
    if isinstance(error, TransientUpstreamError) and error.code == "RequestTimeout":
        return (
            f"DashScope at {_endpoint()} began no answer in time ({error.attempts} attempts): it accepted the "
            "request and then sent nothing for QWEN_REQUEST_TIMEOUT seconds; try again later, or raise "
            "QWEN_REQUEST_TIMEOUT or --timeout"
        )
    return f"the invocation failed ({type(error).__name__}): {error}"


def _endpoint() -> str:
    configured = os.environ.get("DASHSCOPE_HTTP_BASE_URL", "").strip()
    if configured:
        parts = urlsplit(configured)
        # A user:password in the URL is a credential: show the host, never that.
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    import dashscope  # already imported by the call that failed

    return f"{dashscope.base_http_api_url} (the SDK's default)"


def _all_ok(returned: str) -> bool:
    try:
        value = json.loads(returned)
    except ValueError:
        try:  # a .jsonl question file's answer file: one result a line
            value = [json.loads(line) for line in returned.splitlines() if line.strip()]
        except ValueError:
            return False
    results = value if isinstance(value, list) else [value]
    return bool(results) and all(isinstance(r, dict) and r.get("status_code") == 200 for r in results)


class _Lines(logging.Formatter):
    """`LEVEL message`; an internal_error's traceback (a field of its JSON line) is printed as text after
    the line with --verbose, and left out without it (the line says how to see it)."""

    def __init__(self, *, verbose: bool) -> None:
        super().__init__("%(levelname)s %(message)s")
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.name != "qwen" or '"traceback"' not in text:
            return text
        try:
            line = json.loads(record.getMessage())
        except ValueError:
            return text
        trace = line.pop("traceback", None)
        if not isinstance(trace, str):
            return text
        if not self.verbose:
            line["traceback"] = "run with --verbose to print it"
            return f"{record.levelname} {json.dumps(line, ensure_ascii=False)}"
        return f"{record.levelname} {json.dumps(line, ensure_ascii=False)}\n{trace.rstrip()}"


def _log_to_stderr(*, quiet: bool, verbose: bool) -> None:
    """Where log records go: a handler on the root logger always, so Python's last-resort handler never
    prints WARNING and ERROR records (and the SDK's tracebacks) behind --quiet's back."""
    root = logging.getLogger()
    if root.handlers:
        return  # the caller configured logging itself
    if verbose:
        from handler import logs

        logs.quiet_libraries(False)  # the libraries' own records, as they word them
    if quiet:
        root.addHandler(logging.NullHandler())
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Lines(verbose=verbose))
    handler.addFilter(_not_for_the_cli)
    if not verbose:
        # The handler's lines say what happened; the SDK logs a traceback for every failed attempt.
        handler.addFilter(logging.Filter("qwen"))
    root.addHandler(handler)


def _not_for_the_cli(record: logging.LogRecord) -> bool:
    """False for the records that speak of FC's own delivery, which a local run does not have."""
    return not (record.name == "qwen" and str(record.msg).startswith(NOT_FOR_THE_CLI))
