"""Which DashScope refusals are about the account or the deployment, not the question (docs/models.md).

Account-level (raised, redelivered, never stored): every 401 and 403, and by code whatever its status
(Arrearage is a 400): InvalidApiKey, Arrearage, AccessDenied(.*), Workspace.AccessDenied,
Model.AccessDenied, ModelNotFound. Every other refusal below 500 is the question's own answer.
File ids (Qwen-Long's documents) work only with the main account's key of China (Beijing): a files API that
refuses the key, or a base URL of another region, is raised as one such failure naming the url route.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from handler.config import Settings
from handler.errors import AccountFailure
from handler.result import Result
from handler.values import replace

# code (or code prefix before ".") -> what the operator does about it
_FIXES = {
    "InvalidApiKey": "set DASHSCOPE_API_KEY to a valid key of this region (DASHSCOPE_HTTP_BASE_URL its endpoint)",
    "Arrearage": "the Alibaba Cloud account has an overdue payment: top up under Expenses and Costs, then wait a "
    "few minutes",
    "AccessDenied": "grant the key access to the model and activate the model in Model Studio for this account "
    "and region",
    "Workspace.AccessDenied": "give the RAM user's key access to its Model Studio workspace",
    "Model.AccessDenied": "activate the model in Model Studio, or remove it from QWEN_ALLOWED_MODELS",
    "ModelNotFound": "the model is not available in this region: fix QWEN_MODEL / QWEN_ALLOWED_MODELS or the region",
}
_BY_STATUS = {
    401: "check DASHSCOPE_API_KEY and that the key, its region and DASHSCOPE_HTTP_BASE_URL match",
    403: "check the key's permissions, the model's activation and the account's standing in Model Studio",
}


def fix_for(status: int, code: str) -> str | None:
    """What the operator must do when DashScope answered (status, code); None when it is the question's answer."""
    if code in _FIXES:
        return _FIXES[code]
    head = code.split(".", 1)[0]
    if head in ("AccessDenied", "Arrearage", "InvalidApiKey"):
        return _FIXES[head]
    return _BY_STATUS.get(status)


def is_account_level(result: Result | None) -> bool:
    """Whether a stored or fresh result is an account-level refusal (never a record's answer)."""
    return result is not None and _fix(result) is not None


def _fix(result: Result) -> str | None:
    return fix_for(result.status_code, result.code) if 400 <= result.status_code < 500 else None


def raise_if_account_level(result: Result, *, model: str) -> None:
    fix = _fix(result)
    if fix is None:
        return
    raise AccountFailure(
        f"{result.code or result.status_code}: DashScope refused the account, not the question "
        f"(HTTP {result.status_code}, model={model}, request_id={result.request_id or 'none'}): {result.message}; "
        f"fix: {fix}. The event is raised so the trigger delivers it again, then dead-letters it",
        code=result.code or f"HTTP{result.status_code}",
        status_code=result.status_code,
        request_id=result.request_id,
        fix=fix,
    )


# -- regions: API keys are per region; outside Beijing each workspace has its own domain --------------
BEIJING = "cn-beijing"
# Shared endpoints by host; a workspace domain names its region in the host itself.
_HOSTS = {
    "dashscope.aliyuncs.com": BEIJING,
    "dashscope-intl.aliyuncs.com": "ap-southeast-1",
    "dashscope-us.aliyuncs.com": "us-east-1",
}
# A pattern string, compiled by re.fullmatch at its first use (and cached): not at import.
_WORKSPACE_HOST = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\.([a-z0-9-]+)\.maas\.aliyuncs\.com$"
NAMES = {
    BEIJING: "China (Beijing)",
    "ap-southeast-1": "Singapore",
    "us-east-1": "US (Virginia)",
    "cn-hongkong": "China (Hong Kong)",
    "eu-central-1": "Germany (Frankfurt)",
    "ap-northeast-1": "Japan (Tokyo)",
}


def region_of(base_url: str | None) -> str | None:
    """The region of a base URL (None: the SDK's default, Beijing); None for a host not DashScope's."""
    if base_url is None:
        return BEIJING
    host = (urlsplit(base_url).hostname or "").lower()
    match = re.fullmatch(_WORKSPACE_HOST, host)
    return _HOSTS.get(host) or (match.group(1) if match else None)


def with_key_hint(result: Result, settings: Settings) -> Result:
    """A 401 InvalidApiKey outside Beijing, with one sentence on region-specific keys (in Beijing no
    documented key prefix tells an international key from a Beijing one, so any hint would be a guess)."""
    if result.status_code != 401 or result.code != "InvalidApiKey":
        return result
    region = region_of(settings.base_url)
    if region is None or region == BEIJING:
        return result
    name = NAMES.get(region, region)
    hint = (
        f" API keys are region-specific: DASHSCOPE_HTTP_BASE_URL points to {name} ({region}), so the key must be "
        f"one created in the Model Studio console of {name}; a key from another region is refused here"
    )
    return replace(result, message=(result.message.rstrip() + hint).strip())


# -- file ids: only the main account's API key, only China (Beijing) (docs/documents.md) --------------
URL_ROUTE = (
    "read documents by signed OSS URL instead: set QWEN_DOCUMENT_MODEL=qwen-doc-turbo and add qwen-doc-turbo to "
    "QWEN_ALLOWED_MODELS"
)
_RAISED = "The event is raised so the trigger delivers it again, then dead-letters it"


def check_file_region(base_url: str | None, model: str) -> None:
    """Refuse, before any upload, a base URL of a region other than Beijing; a host that is not DashScope's
    (a proxy, a local stand-in) is not judged."""
    region = region_of(base_url)
    if region is None or region == BEIJING:
        return
    name = NAMES.get(region, region)
    fix = f"use a China (Beijing) key and endpoint (https://dashscope.aliyuncs.com/api/v1), or {URL_ROUTE}"
    raise AccountFailure(
        f"FileIdsNotInRegion: {model} reads documents by file id, and file ids work only in China (Beijing), but "
        f"DASHSCOPE_HTTP_BASE_URL points to {name} ({region}); nothing was uploaded; fix: {fix}. {_RAISED}",
        code="FileIdsNotInRegion",
        status_code=403,
        request_id="",
        fix=fix,
    )


def file_ids_refused(refused: AccountFailure, model: str) -> AccountFailure:
    """The files API's 401 or 403 as one failure that names its likely cause and the other route."""
    fix = f"use the main account's API key of China (Beijing), or {URL_ROUTE}; if the key is wrong: {refused.fix}"
    return AccountFailure(
        f"FileIdsRefused: DashScope's files API refused this API key (HTTP {refused.status_code}, code={refused.code}, "
        f"request_id={refused.request_id or 'none'}), so {model} cannot read documents by file id: file ids work only "
        f"with the main account's key, never a RAM user's; fix: {fix}. {_RAISED}",
        code="FileIdsRefused",
        status_code=refused.status_code,
        request_id=refused.request_id,
        fix=fix,
    )
