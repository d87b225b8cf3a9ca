"""DashScope's regions as DASHSCOPE_HTTP_BASE_URL names them, and the hint a wrong-region key gets.

API keys are per region: a key made in one region's Model Studio console is refused with 401
InvalidApiKey by every other region's endpoint. Outside Beijing each workspace also has its own
domain, https://{WorkspaceId}.{region}.maas.aliyuncs.com/api/v1.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from handler.config import Settings
from handler.result import Result
from handler.values import replace

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
    """The region a base URL belongs to (None: the SDK's default, Beijing); None for a host that is
    not one of DashScope's (a proxy, a local stand-in): nothing can be said about its keys."""
    if base_url is None:
        return BEIJING
    host = (urlsplit(base_url).hostname or "").lower()
    if host in _HOSTS:
        return _HOSTS[host]
    match = re.fullmatch(_WORKSPACE_HOST, host)
    return match.group(1) if match else None


def with_key_hint(result: Result, settings: Settings) -> Result:
    """A 401 InvalidApiKey from a region outside Beijing, with one sentence on region-specific keys.

    Beijing keeps DashScope's message alone: no documented key prefix tells an international key
    from a Beijing one, so there is nothing to add there that would not be a guess."""
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
