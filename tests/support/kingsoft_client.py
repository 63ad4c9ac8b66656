"""Kingsoft's current SDK generation (``kingsoftcloud-sdk-python``, import name ``ksyun``)
pointed at a local endpoint, used unchanged through its ``CommonClient``.

Three ways that client sends a call (read from ``ksyun/common/abstract_client.py``):

* ``form`` (its default): ``POST /`` with an ``application/x-www-form-urlencoded`` body holding
  ``Action``, ``Version``, ``Service``, ``SdkVersion``, ``Region``, ``Accesskey``,
  ``Language`` and the parameters flattened with dotted keys (``SrcInfo.0.path``);
* ``get``: the same fields in the query of a ``GET /`` (``HttpProfile(reqMethod="GET")``);
* ``json``: ``call_json``: ``POST /?Action=..&Version=..`` with the parameters (and the same
  bookkeeping members) as a JSON body.

All three are signed by ``requests_aws4auth`` with SigV4 for the service given to
``CommonClient`` (``kvs``): ``content-type;host;x-amz-content-sha256;x-amz-date``, so the
action is covered by the query or by the payload hash, never by a header.

Hermetic use: ``ksyun`` calls ``warnings.filterwarnings("ignore")`` when imported, which
would switch off every warning of the test process; it is imported inside
``warnings.catch_warnings`` so that filter goes away again. The client honours
``HTTP_PROXY``/``HTTPS_PROXY`` (its own check of ``NO_PROXY`` compares ``host:port``
literally), so tests remove the proxy variables from the environment while they use it.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

__all__ = ["MODES", "PROXY_VARIABLES", "KingsoftClient", "Mode", "import_ksyun"]

Mode = Literal["form", "get", "json"]
MODES: tuple[Mode, ...] = ("form", "get", "json")
PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


def import_ksyun() -> Any:
    """The ``ksyun.common`` modules a test needs, imported without the SDK's global
    ``warnings.filterwarnings("ignore")`` surviving the import."""
    with warnings.catch_warnings():
        import ksyun.common.common_client
        import ksyun.common.credential
        import ksyun.common.exception.ksyun_sdk_exception
        import ksyun.common.profile.client_profile
        import ksyun.common.profile.http_profile
    return ksyun.common


@dataclass
class KingsoftClient:
    """A ``CommonClient`` for the ``kvs`` service in one of the three :data:`MODES`."""

    mode: Mode
    client: Any

    @classmethod
    def create(
        cls,
        endpoint_url: str,
        access_key: str,
        secret_key: str,
        mode: Mode,
        *,
        region: str = "cn-beijing-6",
        version: str = "2017-01-01",
    ) -> KingsoftClient:
        """``endpoint_url`` is ``http://host:port``: the SDK takes the scheme as
        ``protocol`` and the host and port as ``endpoint``."""
        common = import_ksyun()
        parts = urlsplit(endpoint_url)
        http_profile = common.profile.http_profile.HttpProfile(
            protocol=parts.scheme,
            endpoint=parts.netloc,
            reqMethod="GET" if mode == "get" else "POST",
            reqTimeout=30,
        )
        client = common.common_client.CommonClient(
            "kvs",
            version,
            common.credential.Credential(access_key, secret_key),
            region,
            profile=common.profile.client_profile.ClientProfile(httpProfile=http_profile),
        )
        return cls(mode, client)

    def call(self, action: str, **params: Any) -> dict[str, Any]:
        """The decoded answer of ``action``. A non-200 answer raises the SDK's
        ``KsyunSDKException`` (``ServerNetworkError`` with the body, or in JSON mode the
        gateway's ``Error.Code``)."""
        if self.mode == "json":
            text = self.client.call_json(action, params)
        else:
            text = self.client.call(action, params)
        answer = json.loads(text)
        assert isinstance(answer, dict), answer
        return answer
