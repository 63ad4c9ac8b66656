"""The ``openkvs`` command line: serve, worker, keys, bucket, cp, doctor, config."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from openkvs import config as config_mod
from openkvs import logs, metrics
from openkvs.config import ConfigError, Settings
from openkvs.errors import ApiError
from openkvs.model import User
from openkvs.runtime import build_runtime, open_services
from openkvs.service.context import Services
from openkvs.service.presign import (
    DEFAULT_EXPIRES,
    MAX_EXPIRES,
    PURPOSE,
    full_url,
    presigned_path,
)
from openkvs.storage.base import StorageError
from openkvs.storage.keys import parse_source_path, validate_bucket, validate_key
from openkvs.storage.mime import content_type_for
from openkvs.store.buckets import DEFAULT_USER, Bucket, Grant
from openkvs.store.secrets import SecretsError


def _settings() -> Settings:
    try:
        return config_mod.load()
    except ConfigError as exc:
        raise click.ClickException(f"bad configuration: {exc}") from exc


class _Main(click.Group):
    """Reports a data-key or storage failure of any command as one readable line, not a
    traceback (every command opens the storage: an unreachable S3 store stops it here)."""

    def invoke(self, ctx: click.Context) -> Any:
        # Warnings of any command (such as insecure_permissions) show their fields;
        # serve and worker set up their own logging.
        logs.setup(level=logging.WARNING)
        try:
            return super().invoke(ctx)
        except SecretsError as exc:
            raise click.ClickException(f"data key: {exc}") from exc
        except StorageError as exc:
            raise click.ClickException(f"storage: {exc}") from exc


@click.group(cls=_Main)
@click.version_option(package_name="openkvs")
def main() -> None:
    """openkvs: a self-hosted media processing service speaking the KVS API.

    Every setting is read from an environment variable OPENKVS_<NAME>; `openkvs config`
    lists them.
    """


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8000, show_default=True, type=int, help="port to listen on")
@click.option(
    "--no-workers",
    is_flag=True,
    help="API only: run no tasks (`openkvs worker` processes elsewhere run them)",
)
def serve(host: str, port: int, no_workers: bool) -> None:
    """Run the API, the embedded worker pool and the callback notifier.

    SIGTERM or SIGINT stops it gracefully: no new connection is accepted and requests in
    flight are answered; the pool claims no new task at once, gives running tasks
    OPENKVS_DRAIN_SECONDS to finish and puts the others back in the queue."""
    from openkvs.api.app import create_app
    from openkvs.api.server import make_server

    settings = _settings()
    logs.setup(
        as_json=settings.log_json, folder=settings.logs_dir, keep_days=settings.log_keep_days
    )
    metrics.enable()  # before the API processes fork: they all record into one folder
    # Bind first: a busy port fails here, before any worker starts or "serving" is printed.
    sock = _listen(host, port)
    runtime = build_runtime(settings, with_workers=not no_workers)
    others = None
    if settings.api_processes > 1:  # forked before any thread starts: see api/processes.py
        from openkvs.api.processes import fork_api_processes

        def serve_api(services: Services) -> None:
            make_server(create_app(services), host, port, settings).run(sockets=[sock])

        others = fork_api_processes(settings.api_processes - 1, runtime, serve_api)
    server = make_server(create_app(runtime.services), host, port, settings)
    stop_api = server.handle_exit

    def handle_exit(sig: int, frame: Any) -> None:
        runtime.drain()  # claim nothing more now, not once the last request is answered
        stop_api(sig, frame)

    server.handle_exit = handle_exit  # type: ignore[method-assign]
    runtime.start()
    shown = sock.getsockname()[1]
    what = "API only, no workers; " if no_workers else ""
    click.echo(
        f"openkvs serving on http://{host}:{shown} ({what}data in {settings.data_dir})", err=True
    )
    try:
        server.run(sockets=[sock])
    finally:
        if others is not None:
            others.stop()
        runtime.stop()
        sock.close()
        metrics.disable()
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
    """List access key ids by user (secrets are never shown again).

    One line per key: user, access key id, and for a revoked key a third column
    `revoked <UTC time>`."""
    services, engine = open_services(_settings())
    try:
        for key in services.users.list_keys():
            line = f"{key.user}\t{key.access_key_id}"
            if key.revoked_at is not None:
                line += f"\trevoked {_utc(key.revoked_at)}"
            click.echo(line)
    finally:
        engine.dispose()


@keys.command("revoke")
@click.argument("access_key_id")
def keys_revoke(access_key_id: str) -> None:
    """Revoke an access key: requests signed with it are refused (InvalidClientTokenId),
    by a running server within OPENKVS_KEY_CACHE_SECONDS. It cannot be restored; create a
    new key instead."""
    services, engine = open_services(_settings())
    try:
        revoked_at = services.users.revoke_key(access_key_id)
    finally:
        engine.dispose()
    if revoked_at is None:
        raise click.ClickException(f"no access key {access_key_id}")
    click.echo(f"{access_key_id}\trevoked {_utc(revoked_at)}")


def _existing_user(services: Services, name: str) -> User:
    """The user ``name`` of the ``keys`` commands that change one (exit 1 when absent)."""
    found = services.users.find_user(name)
    if found is None:
        raise click.ClickException(
            f"no user {name} (`openkvs keys create --user {name}` creates it)"
        )
    return found


@keys.command("webhook-secret")
@click.option("--user", default="default", show_default=True, help="user (tenant) name")
def keys_webhook_secret(user: str) -> None:
    """Print the user's callback signing secret (whsec_..., Standard Webhooks)."""
    services, engine = open_services(_settings())
    try:
        found = _existing_user(services, user)
        click.echo(services.users.webhook_secret(found.id))
    finally:
        engine.dispose()


_ON_OFF = click.Choice(["on", "off"])


@keys.command("callbacks")
@click.option("--user", default="default", show_default=True, help="user (tenant) name")
@click.option("--lowercase", type=_ON_OFF, help="lower-case first-level keys (taskid, ...)")
@click.option("--ks3-items", type=_ON_OFF, help="the KS3-compatibility itmes list")
def keys_callbacks(user: str, lowercase: str | None, ks3_items: str | None) -> None:
    """Show or switch the user's legacy completion-callback variants (off by default).
    They apply to tasks created afterwards."""
    services, engine = open_services(_settings())
    try:
        found = _existing_user(services, user)
        style = services.users.set_callback_style(
            found.id,
            lowercase=None if lowercase is None else lowercase == "on",
            ks3_items=None if ks3_items is None else ks3_items == "on",
        )
    finally:
        engine.dispose()
    on = {True: "on", False: "off"}
    click.echo(f"user:       {user}")
    click.echo(f"lowercase:  {on[style.lowercase]}")
    click.echo(f"ks3-items:  {on[style.ks3_items]}")


@keys.command("admin")
@click.option("--user", default="default", show_default=True, help="user (tenant) name")
@click.argument("switch", type=_ON_OFF, required=False)
def keys_admin(user: str, switch: str | None) -> None:
    """Show or switch the user's console admin flag (off by default): an admin signed in
    to the web console (/console) sees and acts on every user's data. The API is not
    affected."""
    services, engine = open_services(_settings())
    try:
        found = _existing_user(services, user)
        if switch is not None:
            services.users.set_admin(found.id, switch == "on")
        admin = services.users.is_admin(found.id)
    finally:
        engine.dispose()
    click.echo(f"user:   {user}")
    click.echo(f"admin:  {'on' if admin else 'off'}")


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@main.group()
def bucket() -> None:
    """Buckets of the storage (local folders or S3 buckets), their owners and grants.

    A bucket belongs to one user: its tasks may read sources from it and write outputs
    into it. Other users may only with a grant (read-only: sources; read-write: outputs
    too). Buckets that existed before owners did belong to the user `default`.
    """


@bucket.command("create")
@click.argument("name")
@click.option(
    "--user",
    default=DEFAULT_USER,
    show_default=True,
    help="owner (created if needed; `default` is the user `keys create` makes)",
)
def bucket_create(name: str, user: str) -> None:
    """Create a bucket owned by --user (S3 naming rules: 3-63 of a-z 0-9 . -).

    Creating a bucket the same user already owns does nothing; a bucket owned by another
    user is an error (see `bucket chown`)."""
    try:
        validate_bucket(name)
    except ApiError as exc:
        raise click.ClickException(exc.message) from exc
    services, engine = open_services(_settings())
    try:
        owner = services.users.ensure_user(user)
        record = services.buckets.create(name, owner.id)
    finally:
        engine.dispose()
    if record.owner_id != owner.id:
        raise click.ClickException(f"bucket {name} already exists and belongs to {record.owner}")
    try:  # with S3: the bucket <prefix><name>, created or, when it exists, adopted
        services.storage.create_bucket(name)
    except StorageError as exc:
        raise click.ClickException(f"cannot create bucket {name}: {exc}") from exc
    click.echo(name)


@bucket.command("list")
def bucket_list() -> None:
    """List buckets: one line per bucket, name, owner, then one `user:read` or
    `user:readwrite` column per grant (tab-separated)."""
    services, engine = open_services(_settings())
    try:
        records = {b.name: b for b in services.buckets.records()}
    finally:
        engine.dispose()
    try:
        names = services.storage.list_buckets()
    except StorageError as exc:
        raise click.ClickException(f"cannot list buckets: {exc}") from exc
    for name in names:
        found = records.get(name)
        if found is None:  # a folder whose name cannot be a bucket: nobody may use it
            click.echo(f"{name}\t-")
            continue
        grants = [f"{who}:{grant.value}" for who, grant in found.grants.items()]
        click.echo("\t".join([name, found.owner, *grants]))


def _bucket_and_user(services: Services, name: str, user: str) -> tuple[Bucket, User]:
    """The owner record of an existing bucket and an existing user, or a ClickException."""
    found = services.buckets.get(name)
    if found is None or not services.storage.bucket_exists(name):
        raise click.ClickException(f"no bucket {name} (`openkvs bucket create {name}`)")
    who = services.users.find_user(user)
    if who is None:
        raise click.ClickException(
            f"no user {user} (`openkvs keys create --user {user}` creates it)"
        )
    return found, who


@bucket.command("grant")
@click.argument("name")
@click.option("--user", required=True, help="the user to give access to (must exist)")
@click.option("--read-only", is_flag=True, help="sources only, no outputs")
def bucket_grant(name: str, user: str, read_only: bool) -> None:
    """Let --user's tasks read sources from the bucket and, unless --read-only, write
    outputs into it. Replaces an earlier grant to the same user."""
    grant = Grant.READ if read_only else Grant.READWRITE
    services, engine = open_services(_settings())
    try:
        found, who = _bucket_and_user(services, name, user)
        if found.owner_id == who.id:
            raise click.ClickException(f"{user} owns {name}: owners may do everything")
        services.buckets.grant(name, who.id, grant)
    finally:
        engine.dispose()
    click.echo(f"{name}\t{user}:{grant.value}")


@bucket.command("revoke")
@click.argument("name")
@click.option("--user", required=True, help="the user whose grant is removed")
def bucket_revoke(name: str, user: str) -> None:
    """Remove --user's grant on the bucket (tasks already queued still run)."""
    services, engine = open_services(_settings())
    try:
        _, who = _bucket_and_user(services, name, user)
        removed = services.buckets.revoke(name, who.id)
    finally:
        engine.dispose()
    if not removed:
        raise click.ClickException(f"{user} has no grant on {name}")
    click.echo(f"{name}\t{user}:revoked")


@bucket.command("chown")
@click.argument("name")
@click.option("--user", required=True, help="the new owner (must exist)")
def bucket_chown(name: str, user: str) -> None:
    """Give the bucket to another user (e.g. a bucket adopted by `default`). The former
    owner keeps no access unless granted."""
    services, engine = open_services(_settings())
    try:
        _, who = _bucket_and_user(services, name, user)
        services.buckets.set_owner(name, who.id)
    finally:
        engine.dispose()
    click.echo(f"{name}\t{user}")


@main.command()
@click.argument("path")
@click.option(
    "--expires",
    default=DEFAULT_EXPIRES,
    show_default=True,
    type=click.IntRange(1, MAX_EXPIRES),
    help="seconds the URL works (at most 7 days)",
)
@click.option(
    "--base-url", default="", help="put this before the path (default: OPENKVS_PUBLIC_URL)"
)
def presign(path: str, expires: int, base_url: str) -> None:
    """Print a URL that serves the object /bucket/key to whoever holds it, until it
    expires. Without a base URL (--base-url or OPENKVS_PUBLIC_URL) only the path and
    query are printed: put the service's address before them."""
    if base_url and not base_url.startswith(("http://", "https://")):
        raise click.BadParameter("must start with http:// or https://", param_hint="--base-url")
    settings = _settings()
    services, engine = open_services(settings)
    engine.dispose()
    try:
        bucket_name, key = parse_source_path(path)
    except ApiError as exc:
        raise click.ClickException(exc.message) from exc
    storage = services.storage
    if not storage.bucket_exists(bucket_name):
        raise click.ClickException(f"no bucket {bucket_name}")
    try:
        exists = storage.object_exists(bucket_name, key)
    except StorageError:
        exists = False
    if not exists:
        raise click.ClickException(f"{path} does not exist")
    expires_at = int(time.time()) + expires
    try:
        found = presigned_path(services.sealer.derive(PURPOSE), bucket_name, key, expires_at)
    except ApiError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(full_url(base_url or settings.public_url, found) or found)


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
                name, validate_key(key), Path(src), acl=acl, content_type=content_type_for(key)
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
                    content_type=content_type_for(dst_obj[1]),
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
    if shutil.which("ffmpeg"):
        _doctor_encoders(report)
    from openkvs.engine.ffmpeg import parent_death_guard

    guard = parent_death_guard()
    report(
        "child guard",
        guard is not None,
        f"{guard} --pdeathsig: ffmpeg children die with their worker"
        if guard
        else "setpriv (util-linux 2.33 or later) not found: ffmpeg children of a killed "
        "openkvs keep running",
    )
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
    if settings.storage == "s3":
        _doctor_s3(settings, report)
        sys.exit(0 if ok else 1)
    buckets = settings.buckets_dir
    if buckets.is_dir():
        count = sum(1 for p in buckets.iterdir() if p.is_dir() and p.name != ".meta")
        writable = os.access(buckets, os.W_OK)
        report("storage", writable, f"local, {buckets} ({count} buckets)")
    else:
        report("storage", True, f"local, {buckets} (no bucket yet)")
    sys.exit(0 if ok else 1)


def _doctor_s3(settings: Settings, report: Callable[[str, bool, str], None]) -> None:
    """Whether the S3 store answers with these credentials: its buckets are listed."""
    from openkvs.storage.factory import describe_storage, open_storage

    where = describe_storage(settings)
    try:
        count = len(open_storage(settings).list_buckets())
    except StorageError as exc:
        report("storage", False, f"{where}: {type(exc).__name__}: {exc}")
        return
    report("storage", True, f"{where} ({count} buckets)")


def _doctor_encoders(report: Callable[[str, bool, str], None]) -> None:
    """The encoders and resampler transcodes need (engine/formats.py's baseline), and
    whether HE-AAC (libfdk_aac) is there."""
    from openkvs.engine.capabilities import detect
    from openkvs.engine.formats import BASELINE
    from openkvs.errors import TaskError

    try:
        found = detect()
    except TaskError as exc:
        report("encoders", False, f"cannot list ffmpeg's encoders: {exc.detail}")
        return
    missing = sorted(BASELINE.encoders - found.encoders) + sorted(
        BASELINE.resamplers - found.resamplers
    )
    he_aac = "HE-AAC available" if found.he_aac else "no libfdk_aac: HE-AAC tasks refused (1018)"
    report(
        "encoders",
        not missing,
        f"missing {', '.join(missing)}: tasks that need them fail"
        if missing
        else f"every encoder transcodes need; {he_aac}",
    )


def _doctor_key(settings: Settings, report: Callable[[str, bool, str], None]) -> None:
    from openkvs.store.secrets import SecretsError, load_key

    where = "OPENKVS_MASTER_KEY" if settings.master_key else str(settings.data_key_file)
    fresh = not settings.database_url and not (settings.data_dir / "openkvs.db").exists()
    if fresh and not settings.master_key and not settings.data_key_file.exists():
        report("data key", True, f"{where}, not created yet (first start does)")
        return
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
    from openkvs.cli_logs import logs_command
    from openkvs.cli_tasks import preset, task
    from openkvs.cli_workers import worker, workers

    main.add_command(logs_command)
    main.add_command(task)
    main.add_command(preset)
    main.add_command(worker)
    main.add_command(workers)


_register_people_commands()
