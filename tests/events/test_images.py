"""Images are questions too: OSS image files and image parts of requests, through the real dashscope
SDK and oss2 against the two stand-ins on 127.0.0.1."""

from __future__ import annotations

import base64
import builtins
import json
import os
import struct
from pathlib import Path
from types import SimpleNamespace

import pytest

from handler.app import Runtime, handle
from handler.ask.apis import ModelApis
from handler.ask.attempts import Backoff
from handler.deliver.memory import AnsweredRecords
from handler.events import images
from handler.local.standin import GENERATION_PATH, MULTIMODAL_PATH
from handler.local.standin_oss import SAMPLE_IMAGE
from tests.conftest import API_KEY, ROOT
from tests.support.events import oss_event as event_text
from tests.support.events import oss_record

BUCKET = "qwen-photos"
CREDS = SimpleNamespace(access_key_id="STS.IMG0001", access_key_secret="img-secret-0001", security_token="img-token-01")
PNG = SAMPLE_IMAGE.read_bytes()
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64 + b"\xff\xd9"
# A VP8 key frame's header: frame tag, start code 9d 01 2a, a 1x1 picture.
WEBP = b"RIFF" + struct.pack("<I", 30) + b"WEBPVP8 " + struct.pack("<I", 18) + b"\x00" * 3 + b"\x9d\x01\x2a"
WEBP += b"\x01\x00\x01\x00" + b"\x00" * 8
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00"
BMP = b"BM" + struct.pack("<IHHI", 58, 0, 0, 54) + struct.pack("<IiiHH", 40, 1, 1, 1, 24) + b"\x00" * 28


@pytest.fixture
def fc(context):
    context.credentials = CREDS
    return context


@pytest.fixture
def env(standin, oss) -> dict[str, str]:
    return {
        "DASHSCOPE_API_KEY": API_KEY,
        "DASHSCOPE_HTTP_BASE_URL": standin.url,
        "QWEN_OSS_ENDPOINT": oss.url,
        "QWEN_OSS_BUCKETS": BUCKET,
    }


@pytest.fixture
def wire(env) -> Runtime:
    return Runtime(env=env, backoff=Backoff(base=0.01, cap=0.02), apis=ModelApis(), memory=AnsweredRecords())


def ask(event: bytes | str, context, runtime: Runtime):
    return json.loads(handle(event.encode() if isinstance(event, str) else event, context, runtime))


def oss_event(key: str, etag: str | None, size: int | None = None) -> str:
    return event_text(oss_record(key, bucket=BUCKET, etag=etag, size=size))


def upload(oss, key: str, data: bytes) -> str:
    """Put the object in the OSS stand-in and give the event that announces it."""
    stored = oss.put(BUCKET, key, data)
    return oss_event(key, stored.etag, len(data))


def sent_parts(request) -> list[dict]:
    return request.body["input"]["messages"][-1]["content"]


def content(result) -> str:
    return result["output"]["choices"][0]["message"]["content"]


@pytest.mark.parametrize(
    ("name", "data", "mime"),
    [
        ("a.png", PNG, "png"),
        ("b.jpg", JPEG, "jpeg"),
        ("c.webp", WEBP, "webp"),
        ("d.gif", GIF, "gif"),
        ("e.bmp", BMP, "bmp"),
    ],
)
def test_an_image_file_is_answered_and_its_answer_written(standin, oss, wire, fc, logs, name, data, mime):
    """The image goes to the vision model as a data: URI of its bytes, with the default instruction;
    the answer file beside it holds the result returned."""
    key = f"photos/{name}"
    (result,) = ask(upload(oss, key, data), fc, wire)
    assert result["status_code"] == 200 and "[1 image part received]" in content(result)
    (request,) = standin.requests
    assert request.path == MULTIMODAL_PATH and request.body["model"] == "qwen3-vl-flash"
    image, text = sent_parts(request)
    assert image == {"image": f"data:image/{mime};base64,{base64.b64encode(data).decode()}"}
    assert text == {"text": "请描述这张图片的内容;如果图片中有问题,请回答它。"}
    written = oss.get(BUCKET, f"answers/{key}.json")
    assert json.loads(written.data) == result
    line = logs.events("question")[-1]
    assert line["image_parts"] == 1 and line["api"] == "multimodal" and line["model"] == "qwen3-vl-flash"


def test_a_sidecar_replaces_the_instruction_and_is_not_answered_itself(standin, oss, wire, fc):
    oss.put(BUCKET, "photos/dish.png.txt", "这道菜叫什么?怎么做?")
    (result,) = ask(upload(oss, "photos/dish.png", PNG), fc, wire)
    assert result["status_code"] == 200
    assert sent_parts(standin.requests[0])[-1] == {"text": "这道菜叫什么?怎么做?"}
    standin.reset()
    (skipped,) = ask(oss_event("photos/dish.png.txt", "ABCDEF0123"), fc, wire)
    assert skipped["status_code"] == 200 and skipped["code"] == "Skipped" and "sidecar" in skipped["message"]
    assert standin.requests == [] and oss.get(BUCKET, "answers/photos/dish.png.txt.json") is None


@pytest.mark.parametrize("announced", [True, False])
def test_a_12_mib_image_is_413_without_a_dashscope_call(standin, oss, wire, fc, announced):
    big = PNG[:33] + b"\x00" * (12 * 1024 * 1024)
    stored = oss.put(BUCKET, "photos/big.png", big)
    event = oss_event("photos/big.png", stored.etag, len(big) if announced else None)
    (result,) = ask(event, fc, wire)
    assert result["status_code"] == 413 and result["code"] == "ImageTooLarge"
    assert "QWEN_OSS_MAX_IMAGE_BYTES" in result["message"]
    assert standin.requests == []
    assert json.loads(oss.get(BUCKET, "answers/photos/big.png.json").data)["status_code"] == 413


def test_a_jpg_that_is_really_text_is_answered_as_text(standin, oss, wire, fc):
    """The bytes decide, not the name: a .jpg holding a question is a text question."""
    (result,) = ask(upload(oss, "photos/note.jpg", "西红柿炖牛腩要炖多久?".encode()), fc, wire)
    assert result["status_code"] == 200 and "西红柿炖牛腩要炖多久?" in content(result)
    (request,) = standin.requests
    assert request.path == GENERATION_PATH


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x00JUNK", "ImageCorrupt"),
        (b"\xff\xd8\xff", "ImageCorrupt"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00binary\x00\xff", "ObjectNotText"),
    ],
)
def test_corrupt_or_unsupported_files_are_415_written_as_the_answer(standin, oss, wire, fc, data, code):
    (result,) = ask(upload(oss, "photos/x.png", data), fc, wire)
    assert result["status_code"] == 415 and result["code"] == code
    assert standin.requests == []
    assert json.loads(oss.get(BUCKET, "answers/photos/x.png.json").data)["code"] == code


def test_text_that_opens_like_an_image_signature_is_still_text():
    assert images.sniff("BMW 和 GIF89a 有什么关系?".encode()).kind is None


def request_with(image: str, **extra) -> str:
    return json.dumps({"messages": [{"role": "user", "content": [{"image": image}, {"text": "这是什么?"}]}], **extra})


def test_an_https_image_part_goes_to_the_vision_model_unfetched(standin, wire, fc, logs):
    url = "https://help-static-aliyun-doc.aliyuncs.com/file-manage-files/zh-CN/20241022/emyrja/dog_and_girl.jpeg"
    result = ask(request_with(url), fc, wire)
    assert result["status_code"] == 200 and "[1 image part received]" in content(result)
    (request,) = standin.requests
    assert request.path == MULTIMODAL_PATH and request.body["model"] == "qwen3-vl-flash"
    assert sent_parts(request) == [{"image": url}, {"text": "这是什么?"}]
    assert logs.events("question")[-1]["image_parts"] == 1


def test_the_requests_model_answers_when_allowed_and_multimodal(standin, wire, env, fc):
    env["QWEN_ALLOWED_MODELS"] = "qwen-turbo,qwen3-vl-plus"
    url = "https://example.com/a.png"
    assert ask(request_with(url, model="qwen3-vl-plus"), fc, wire)["status_code"] == 200
    assert ask(request_with(url, model="qwen-turbo"), fc, wire)["status_code"] == 200  # a text model: the vision one
    assert [r.body["model"] for r in standin.requests] == ["qwen3-vl-plus", "qwen3-vl-flash"]


# Every form MultiModalConversation's preprocessing would upload or resolve (oss_utils.check_and_upload),
# plus the schemes DashScope does not document: each names something that exists where it could.
REFUSED_FORMS = [
    "/proc/self/environ",
    "file:///proc/self/environ",
    "file://index.py",
    "index.py",
    "~/.bashrc",
    "oss://qwen-photos/photos/a.png",
    "ftp://example.com/a.png",
    "http://example.com/a.png",
    "./index.py",
]


@pytest.mark.parametrize("form", REFUSED_FORMS)
def test_an_image_part_that_is_not_https_or_data_is_400_with_no_call_and_no_file_opened(
    standin, wire, fc, mocker, monkeypatch, form
):
    monkeypatch.chdir(ROOT)
    plain = form.removeprefix("file://")
    targets = {form, plain, os.path.expanduser(plain), str(Path(os.path.expanduser(plain)).resolve())}
    touched: list[str] = []

    def spy(real):
        def wrapper(path, *args, **kwargs):
            if str(path) in targets:
                touched.append(f"{real.__name__}({path})")
            return real(path, *args, **kwargs)

        return wrapper

    mocker.patch("builtins.open", side_effect=spy(builtins.open))
    mocker.patch("os.stat", side_effect=spy(os.stat))
    mocker.patch("os.path.exists", side_effect=spy(os.path.exists))
    mocker.patch("os.path.isfile", side_effect=spy(os.path.isfile))
    result = ask(request_with(form), fc, wire)
    assert result["status_code"] == 400 and result["code"] == "InvalidRequest"
    assert "content[0].image" in result["message"]
    assert standin.requests == [] and touched == []


def test_a_data_image_part_is_bounded_by_the_image_limit(standin, wire, env, fc):
    env["QWEN_OSS_MAX_IMAGE_BYTES"] = str(len(PNG))
    uri = images.data_uri(PNG, images.sniff(PNG))
    assert ask(request_with(uri), fc, wire)["status_code"] == 200
    assert sent_parts(standin.requests[0])[0] == {"image": uri}
    env["QWEN_OSS_MAX_IMAGE_BYTES"] = str(len(PNG) - 1)
    refused = ask(request_with(uri), fc, wire)
    assert refused["status_code"] == 413 and refused["code"] == "ImageTooLarge"
    assert len(standin.requests) == 1


def test_timer_payloads_and_mns_messages_carry_image_requests(standin, wire, fc):
    url = "https://example.com/receipt.jpg"
    timer = {"triggerTime": "2026-12-01T08:00:00Z", "triggerName": "daily-photo", "payload": request_with(url)}
    mns = {
        "TopicOwner": "1",
        "Message": request_with(url),
        "Subscriber": "1",
        "PublishTime": 1,
        "TopicName": "t",
        "MessageMD5": "x",
        "SubscriptionName": "s",
        "MessageId": "IMG-1",
    }
    for event in (timer, mns):
        assert ask(json.dumps(event), fc, wire)["status_code"] == 200
    assert [sent_parts(r)[0] for r in standin.requests] == [{"image": url}, {"image": url}]
    bad = {**timer, "payload": request_with("/proc/self/environ")}
    assert ask(json.dumps(bad), fc, wire)["code"] == "InvalidRequest"
    assert len(standin.requests) == 2


def test_the_cost_uses_the_vision_models_prices_and_reported_usage(standin, wire, env, fc, logs):
    """Image tokens cannot be counted locally; DashScope's usage (image tokens included) is priced."""
    env["QWEN_MODEL_TABLE"] = '{"qwen3-vl-flash": {"input_price": 0.001, "output_price": 0.002}}'
    result = ask(request_with("https://example.com/a.png"), fc, wire)
    usage = result["usage"]
    assert usage["image_tokens"] == 100 and usage["input_tokens"] >= 100
    expected = round(usage["input_tokens"] * 0.001 / 1000 + usage["output_tokens"] * 0.002 / 1000, 8)
    assert logs.events("question")[-1]["cost_cny"] == expected


# A whole 1x1 GIF as encoders write it: header, a two-colour table, one image (LZW code size 2), the trailer.
GIF_1X1 = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff,\x00\x00\x00\x00\x01\x00\x01\x00\x00"
GIF_1X1 += b"\x02\x02D\x01\x00;"
WEBP_LOSSLESS = b"RIFF" + struct.pack("<I", 24) + b"WEBPVP8L" + struct.pack("<I", 11) + b"/" + b"\x00" * 10
WEBP_EXTENDED = b"RIFF" + struct.pack("<I", 22) + b"WEBPVP8X" + struct.pack("<I", 10) + b"\x00" * 10
BMP_OS2 = b"BM" + struct.pack("<IHHI", 32, 0, 0, 26) + struct.pack("<IHHHH", 12, 1, 1, 1, 24) + b"\x00" * 6


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (PNG, "png"),
        (PNG[:33], "png"),  # the header alone: a large file read up to its limit still sniffs as what it is
        (JPEG, "jpeg"),
        (WEBP, "webp"),
        (WEBP_LOSSLESS, "webp"),
        (WEBP_EXTENDED, "webp"),
        (GIF, "gif"),
        (GIF_1X1, "gif"),
        (BMP, "bmp"),
        (BMP_OS2, "bmp"),
    ],
)
def test_whole_images_sniff_as_their_type(data, kind):
    assert images.sniff(data) == images.Sniffed(kind)


# Texts that open with an image's signature, and a header's worth of bytes after it.
SIGNATURE_TEXTS = [
    "GIF89a和GIF87a有什么区别?",
    "GIF87a, GIF89a: which one?",
    "GIF89a vs PNG, which is smaller?",  # "," where an image descriptor would be
    "GIF89a vs PNG! Which one?",  # "!" where an extension would be
    "RIFF 和WEBPVP8 有什么区别?",
    "RIFF 和WEBPVP8L有什么区别? RIFF 和WEBPVP8X呢?",
]


@pytest.mark.parametrize("text", SIGNATURE_TEXTS)
def test_a_text_file_that_opens_with_an_image_signature_is_asked_as_text(standin, oss, wire, fc, text):
    """An image must parse as one: a question that starts "GIF89a" is a text question, not a GIF."""
    (result,) = ask(upload(oss, "notes/formats.txt", text.encode()), fc, wire)
    assert result["status_code"] == 200, result
    (request,) = standin.requests
    assert request.path == GENERATION_PATH and text in content(result)


@pytest.mark.parametrize(
    "data",
    [GIF_1X1[:13], GIF_1X1[:20], GIF_1X1[:27], WEBP[:24], b"GIF89a\x00\x00\x01\x00\x00\x00\x00,", BMP[:26]],
)
def test_a_truncated_image_that_is_not_text_is_415_image_corrupt(standin, oss, wire, fc, data):
    (result,) = ask(upload(oss, "photos/cut.gif", data), fc, wire)
    assert result["status_code"] == 415 and result["code"] == "ImageCorrupt", result
    assert standin.requests == []
