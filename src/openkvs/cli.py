"""The ``openkvs`` command line: serve, worker, keys, bucket, cp, doctor, config."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from openkvs import config as config_mod
from openkvs import logs
from openkvs.config import ConfigError, Settings
from openkvs.errors import ApiError
from openkvs.runtime import build_runtime, open_services
from openkvs.storage.base import StorageError
from openkvs.storage.keys import validate_bucket, validate_key


def _settings() -> Settings:
    try:
        return config_mod.load()
    except ConfigError as exc:
        raise click.ClickException(f"bad configuration: {exc}") from exc


@click.group()
@click.version_option(package_name="openkvs")
def main() -> None:
    """openkvs: a self-hosted media processing service speaking the KVS API.

    Every setting is read from an environment variable OPENKVS_<NAME>; `openkvs config`
    lists them.
    """


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8000, show_default=True, type=int, help="port to listen on")
def serve(host: str, port: int) -> None:
    """Run the API, the embedded worker pool and the callback notifier."""
    from openkvs.api.app import create_app
    from openkvs.api.server import make_server

    settings = _settings()
    logs.setup(as_json=settings.log_json)
    # Bind first: a busy port fails here, before any worker starts or "serving" is printed.
    sock = _listen(host, port)
    runtime = build_runtime(settings)
    server = make_server(create_app(runtime.services), host, port)
    runtime.start()
    shown = sock.getsockname()[1]
    click.echo(f"openkvs serving on http://{host}:{shown} (data in {settings.data_dir})", err=True)
    try:
        server.run(sockets=[sock])
    finally:
        runtime.stop()
        sock.close()
        click.echo("openkvs stopped", err=True)


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a ClickException naming why not."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.set_inheritable(True)
    return sock


@main.command()
def worker() -> None:
    """Run only a worker pool and notifier (scale-out: share the database and storage)."""
    settings = _settings()
    logs.setup(as_json=settings.log_json)
    runtime = build_runtime(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    runtime.start()
    click.echo(f"openkvs worker running {settings.workers} workers", err=True)
    while not stop.wait(1.0):
        pass
    runtime.stop()


@main.group()
def keys() -> None:
    """Users and access keys."""


@keys.command("create")
@click.option("--user", default="default", show_default=True, help="user (tenant) name")
@click.option("--json", "as_json", is_flag=True, help="print only the key pair as JSON")
def keys_create(user: str, as_json: bool) -> None:
    """Create the user if needed and a new access key for it."""
    services, engine = open_services(_settings())
    try:
        key_id, secret = services.users.create_key(services.users.ensure_user(user))
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps({"AccessKeyId": key_id, "SecretAccessKey": secret}))
    else:
        click.echo(
            f"user:              {user}\nAccessKeyId:       {key_id}\nSecretAccessKey:   {secret}"
        )


@keys.command("list")
def keys_list() -> None:
    """List access key ids by user (secrets are never shown again)."""
    services, engine = open_services(_settings())
    try:
        for user, key_id in services.users.list_keys():
            click.echo(f"{user}\t{key_id}")
    finally:
        engine.dispose()


@main.group()
def bucket() -> None:
    """Buckets of the local storage."""


@bucket.command("create")
@click.argument("name")
def bucket_create(name: str) -> None:
    """Create a bucket (S3 naming rules: 3-63 of a-z 0-9 . -)."""
    services, engine = open_services(_settings())
    engine.dispose()
    try:
        validate_bucket(name)
    except ApiError as exc:
        raise click.ClickException(exc.message) from exc
    services.storage.create_bucket(name)
    click.echo(name)


@bucket.command("list")
def bucket_list() -> None:
    """List buckets."""
    services, engine = open_services(_settings())
    engine.dispose()
    for name in services.storage.list_buckets():
        click.echo(name)


def _object_ref(arg: str, buckets: list[str]) -> tuple[str, str] | None:
    if not arg.startswith("/"):
        return None
    name, _, key = arg[1:].partition("/")
    if name not in buckets:
        return None
    return name, key


@main.command()
@click.argument("src")
@click.argument("dst")
@click.option(
    "--acl",
    default="private",
    show_default=True,
    type=click.Choice(["private", "public-read"]),
    help="ACL of an uploaded object",
)
def cp(src: str, dst: str, acl: str) -> None:
    """Copy a local file to an object or an object to a local file.

    An argument that starts with / and whose first segment names an existing bucket
    (/bucket/key) is an object; anything else is a local file. A destination key that
    ends with / gets the source's file name.
    """
    services, engine = open_services(_settings())
    engine.dispose()
    storage = services.storage
    buckets = storage.list_buckets()
    src_obj, dst_obj = _object_ref(src, buckets), _object_ref(dst, buckets)
    try:
        if src_obj and not dst_obj:
            target = Path(dst)
            if target.is_dir():
                target = target / Path(src_obj[1]).name
            storage.get_file(src_obj[0], validate_key(src_obj[1]), target)
        elif dst_obj and not src_obj:
            name, key = dst_obj
            if not key or key.endswith("/"):
                key += Path(src).name
            if not Path(src).is_file():
                raise click.ClickException(f"{src}: no such file")
            storage.put_file(
                name, validate_key(key), Path(src), acl=acl, content_type="application/octet-stream"
            )
        elif src_obj and dst_obj:
            with tempfile.TemporaryDirectory() as tmp:
                local = Path(tmp) / "object"
                storage.get_file(src_obj[0], validate_key(src_obj[1]), local)
                storage.put_file(
                    dst_obj[0],
                    validate_key(dst_obj[1]),
                    local,
                    acl=acl,
                    content_type="application/octet-stream",
                )
        else:
            raise click.ClickException(
                "one of SRC and DST must be an object /bucket/key in an existing bucket"
            )
    except ApiError as exc:
        raise click.ClickException(exc.message) from exc
    except StorageError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
def doctor() -> None:
    """Check ffmpeg/ffprobe, the data key, the database and the storage; changes nothing
    (it never creates the data folder, the key file or the schema)."""
    ok = True

    def report(name: str, good: bool, detail: str) -> None:
        nonlocal ok
        ok = ok and good
        click.echo(f"[{'ok' if good else 'FAIL':>4}] {name}: {detail}")

    for tool in ("ffmpeg", "ffprobe"):
        path = shutil.which(tool)
        if path is None:
            report(tool, False, "not found on PATH (scripts/install.sh installs it)")
            continue
        out = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=30)
        report(tool, out.returncode == 0, out.stdout.splitlines()[0] if out.stdout else path)
    settings = _settings()
    if not settings.data_dir.is_dir():
        report(
            "data folder",
            True,
            f"{settings.data_dir} does not exist yet (`openkvs serve` or `openkvs keys create` "
            "creates it); nothing more to check",
        )
        sys.exit(0 if ok else 1)
    report("data folder", True, str(settings.data_dir))
    _doctor_key(settings, report)
    _doctor_database(settings, report)
    buckets = settings.buckets_dir
    if buckets.is_dir():
        count = sum(1 for p in buckets.iterdir() if p.is_dir() and p.name != ".meta")
        writable = os.access(buckets, os.W_OK)
        report("storage", writable, f"local, {buckets} ({count} buckets)")
    else:
        report("storage", True, f"local, {buckets} (no bucket yet)")
    sys.exit(0 if ok else 1)


def _doctor_key(settings: Settings, report: Callable[[str, bool, str], None]) -> None:
    from openkvs.store.secrets import SecretsError, load_key

    where = "OPENKVS_MASTER_KEY" if settings.master_key else str(settings.data_key_file)
    try:
        load_key(settings.master_key, settings.data_key_file, create=False)
    except (SecretsError, OSError) as exc:
        report("data key", False, f"{where}: {exc}")
    else:
        report("data key", True, where)


def _doctor_database(settings: Settings, report: Callable[[str, bool, str], None]) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from openkvs.store.migrations import LATEST, current_version

    url = settings.sqlalchemy_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        report("database", True, f"SQLite {parsed.database}, not created yet (first start does)")
        return
    try:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                version = current_version(conn) if _has_schema(conn) else 0
        finally:
            engine.dispose()
    except Exception as exc:  # doctor reports every failure instead of stopping
        report("database", False, f"{type(exc).__name__}: {exc}")
        return
    shown = engine.url.render_as_string(hide_password=True)
    if version == LATEST:
        report("database", True, f"{shown} (schema version {version})")
    else:
        report(
            "database",
            version < LATEST,
            f"{shown} (schema version {version}; this openkvs uses {LATEST}, "
            + ("upgraded at the next start)" if version < LATEST else "newer than this openkvs)"),
        )


def _has_schema(conn: Any) -> bool:
    from sqlalchemy import inspect

    return bool(inspect(conn).has_table("schema_version"))


@main.command("config")
def show_config() -> None:
    """List every setting: environment variable, default, meaning."""
    for name, default, description in config_mod.describe():
        click.echo(f"{name:<28} {default:<20} {description}")


def _register_people_commands() -> None:
    from openkvs.cli_tasks import preset, task

    main.add_command(task)
    main.add_command(preset)


_register_people_commands()
