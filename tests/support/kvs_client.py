"""The official ``kscore`` SDK, built hermetically for tests (kscore-client.md §1, §6, §7).

``make_kvs_client`` returns a real ``kscore`` client pointed at a local endpoint that

* reads no config file (``~/.ks/config``, ``~/.ks/credentials``, ``.kscore.cfg``), no
  ``KS_*`` session variable and no profile: every session variable is pinned to its default;
* does not search ``~/.ks/models``: only the extended model and the SDK's own data are used;
* sends nothing through a proxy, whatever ``HTTP_PROXY``/``NO_PROXY`` say;
* knows ``CreateWaveTask`` and ``GetObjectURL`` (``client.create_wave_task(**kwargs)``,
  ``client.get_object_url(**kwargs)``) when ``extra_ops`` is true: the installed
  ``kvs/2017-01-01/service-2.yaml`` plus those operations is written to a
  temporary ``data_path``, which is removed again once the client is built (the loader
  has cached everything the client needs by then);
* fails fast on 429/503/509/Throttling when ``disable_retries`` is true.

Warnings: importing ``kscore`` emits a ``DeprecationWarning`` (its vendored ``requests``
imports ``cgi``) and an ``ImportWarning`` (its vendored ``six`` 1.8 meta-path importer has no
``find_spec``). Both are silenced here, by message, inside ``warnings.catch_warnings`` around
the import. The second one would otherwise come back on *every* failed import anywhere in the
process afterwards (``try: import x except ImportError``), so the vendored importer is given
the ``find_spec``/``create_module``/``exec_module`` trio that six ≥ 1.16 has; see
``_patch_vendored_six``. Call ``close_kvs_client`` when done so the kept-alive connection is
closed explicitly rather than by the garbage collector.
"""

from __future__ import annotations

import importlib.util
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "API_VERSION",
    "EXTRA_OPERATIONS",
    "close_kvs_client",
    "import_kscore",
    "kvs_client",
    "make_kvs_client",
    "make_wrapper",
]

API_VERSION = "2017-01-01"

#: Operations our server speaks that the SDK's model lacks; same form as its POST operations.
EXTRA_OPERATIONS: dict[str, dict[str, Any]] = {
    "CreateWaveTask": {"name": "CreateWaveTask", "http": {"method": "POST"}},
    "GetObjectURL": {"name": "GetObjectURL", "http": {"method": "POST"}},  # openkvs extension
}


def import_kscore() -> Any:
    """The ``kscore`` package, imported without its import-time warnings (see above).

    Tests import kscore through this (``import_kscore().exceptions.ClientError``) or after
    a client has been made; a plain ``import kscore`` first would fail under
    ``filterwarnings = error``.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"'cgi' is deprecated", category=DeprecationWarning
        )
        warnings.filterwarnings(
            "ignore",
            message=r"_SixMetaPathImporter\.find_spec\(\) not found",
            category=ImportWarning,
        )
        import kscore.kvs
        import kscore.loaders
        import kscore.session
        import kscore.vendored.six

    _patch_vendored_six(kscore.vendored.six)
    return kscore


def _patch_vendored_six(six_module: Any) -> None:
    """Give kscore's vendored six 1.8 importer the PEP 451 methods six 1.16 added.

    Without them, Python's import system warns (``ImportWarning``) each time it asks this
    finder about a module, i.e. on every import that no earlier finder resolves; under
    ``filterwarnings = error`` that turns an ordinary ``ImportError`` into an
    ``ImportWarning`` exception anywhere in the test process.
    """
    importer_cls = six_module._SixMetaPathImporter
    if hasattr(importer_cls, "find_spec"):
        return

    def find_spec(self: Any, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname in self.known_modules:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self: Any, spec: Any) -> Any:
        return self.load_module(spec.name)

    def exec_module(self: Any, module: Any) -> None:
        return None

    importer_cls.find_spec = find_spec
    importer_cls.create_module = create_module
    importer_cls.exec_module = exec_module


def _hermetic_session(kscore: Any, nowhere: Path) -> Any:
    """A Session whose variables come from neither the environment nor a config file."""
    session_cls = kscore.session.Session
    pinned: dict[str, tuple[Any, Any, Any, Any]] = {}
    for name, (_config_key, _env, default, convert) in session_cls.SESSION_VARIABLES.items():
        pinned[name] = (None, None, default, convert)
    # The two file locations are read even with explicit keys (for the scoped config).
    pinned["config_file"] = (None, None, str(nowhere / "config"), None)
    pinned["credentials_file"] = (None, None, str(nowhere / "credentials"), None)
    return session_cls(session_vars=pinned)


def _write_extended_model(kscore: Any, data_path: Path) -> None:
    builtin = Path(kscore.loaders.Loader.BUILTIN_DATA_PATH)
    relative = Path("kvs") / API_VERSION / "service-2.yaml"
    model = yaml.safe_load((builtin / relative).read_text(encoding="utf-8"))
    for name, operation in EXTRA_OPERATIONS.items():
        model["operations"].setdefault(name, operation)
    target = data_path / relative
    target.parent.mkdir(parents=True)
    target.write_text(yaml.safe_dump(model, sort_keys=False), encoding="utf-8")


def make_kvs_client(
    endpoint_url: str,
    access_key: str,
    secret_key: str,
    *,
    region: str = "cn-beijing-6",
    extra_ops: bool = True,
    disable_retries: bool = True,
    config: Any = None,
) -> Any:
    """A ``kscore`` "kvs" client for ``endpoint_url``, isolated from the user's environment.

    ``config`` is an optional ``kscore.config.Config`` (timeouts). The result is the SDK's own
    client class: ``create_task(...)``, ``get_task_by_task_id(TaskID=...)``, and with
    ``extra_ops`` also ``create_wave_task(...)``. Close it with ``close_kvs_client``.
    """
    kscore = import_kscore()
    with tempfile.TemporaryDirectory(prefix="openkvs-kscore-") as tmp:
        root = Path(tmp)
        session = _hermetic_session(kscore, root / "no-such-dir")
        if extra_ops:
            data_path = root / "models"
            _write_extended_model(kscore, data_path)
            session.set_config_variable("data_path", str(data_path))
        loader = session.get_component("data_loader")
        # ~/.ks/models is always searched before the SDK's data; keep the user's out.
        loader.search_paths[:] = [
            p for p in loader.search_paths if p != kscore.loaders.Loader.CUSTOMER_DATA_PATH
        ]
        client = session.create_client(
            "kvs",
            region,
            api_version=API_VERSION,
            endpoint_url=endpoint_url,
            verify=True,  # explicit, so REQUESTS_CA_BUNDLE is not consulted
            ks_access_key_id=access_key,
            ks_secret_access_key=secret_key,
            config=config,
        )
    endpoint = client._endpoint
    endpoint.proxies = {}  # taken from HTTP_PROXY & co. at creation
    endpoint.http_session.trust_env = False  # and again on redirects
    if disable_retries:
        client.meta.events.unregister("needs-retry.kvs", unique_id="retry-config-kvs")
    return client


def close_kvs_client(client: Any) -> None:
    """Close the client's pooled keep-alive connection(s)."""
    client._endpoint.http_session.close()


@contextmanager
def kvs_client(endpoint_url: str, access_key: str, secret_key: str, **kwargs: Any) -> Iterator[Any]:
    """``make_kvs_client`` as a context manager that closes the client on exit."""
    client = make_kvs_client(endpoint_url, access_key, secret_key, **kwargs)
    try:
        yield client
    finally:
        close_kvs_client(client)


def make_wrapper(client: Any) -> Any:
    """``kscore.kvs.KvsClient`` (what ``getKvsClient()`` returns) around ``client``.

    The wrapper cannot take an endpoint URL, so it is grafted onto an existing client
    (kscore-client.md §1): calls like ``GetTaskMetaInfo()`` then send exactly what the
    wrapper sends in production (empty-string defaults, GetTaskList for no TaskID...).
    """
    kscore = import_kscore()
    wrapper_cls = kscore.kvs.KvsClient
    wrapper = wrapper_cls.__new__(wrapper_cls)
    wrapper.client = client
    return wrapper


#: Former name, still used by tests/unit/test_sigv4.py.
_import_kscore = import_kscore
