"""Settings, declared once.

Every setting has a type, a default and a one-line description, and can be given as the
environment variable ``OPENKVS_<NAME>`` (upper case). Bad values fail loudly at start-up with
:class:`ConfigError`. Components receive a :class:`Settings` (or single values) as arguments and
never read ``os.environ`` themselves; ``openkvs config`` prints the table below.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A setting has a value that cannot be used."""


def _setting(
    default: Any,
    description: str,
    *,
    parse: Callable[[str], Any] | None = None,
    secret: bool = False,
) -> Any:
    """A setting; a ``secret`` one is left out of the settings' ``repr`` (logs, tracebacks)."""
    return field(
        default=default, repr=not secret, metadata={"description": description, "parse": parse}
    )


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("must be a port number from 0 to 65535")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0:  # NaN too
        raise ValueError("must be 0 or more")
    return value


def _backoff(raw: str) -> tuple[float, ...]:
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not parts:
        raise ValueError("needs at least one delay")
    values = tuple(float(p) for p in parts)
    if any(v < 0 for v in values):
        raise ValueError("delays cannot be negative")
    return values


def _base_url(raw: str) -> str:
    """An http(s) URL without query or fragment, kept without its trailing slash."""
    value = raw.strip()
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError("must not carry credentials, a query or a fragment")
    return value.rstrip("/")


def _networks(raw: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """A comma-separated list of CIDR ranges such as ``127.0.0.0/8,::1/128``."""
    try:
        return tuple(ip_network(p.strip()) for p in raw.split(",") if p.strip())
    except ValueError as exc:
        raise ValueError(f"needs CIDR ranges such as 10.0.0.0/8: {exc}") from exc


def _pipeline_names(raw: str) -> tuple[str, ...]:
    """Comma-separated pipeline names (1-64 of ``A-Z a-z 0-9 _ -`` each), sorted."""
    names = {p.strip() for p in raw.split(",") if p.strip()}
    bad = sorted(n for n in names if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", n))
    if bad:
        raise ValueError(f"pipeline names are 1-64 of A-Z a-z 0-9 _ -, not {', '.join(bad)}")
    return tuple(sorted(names))


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("must be true or false")


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value

    return parse


def _bucket_prefix(raw: str) -> str:
    """What S3 bucket names start with: lower-case letters, digits, ``-`` and ``.``."""
    value = raw.strip()
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{0,39}", value) and value:
        raise ValueError("must be 1-40 of a-z 0-9 . - starting with a letter or digit")
    return value


@dataclass(frozen=True)
class Settings:
    """The whole configuration of one openkvs process."""

    data_dir: Path = _setting(
        Path("./openkvs-data"), "folder for the SQLite database and local buckets", parse=Path
    )
    region: str = _setting(
        "cn-beijing-6", "the region requests must be signed for (one region per deployment)"
    )
    workers: int = _setting(
        os.cpu_count() or 1, "tasks run at once by `serve`/`worker`", parse=_positive_int
    )
    lease_seconds: float = _setting(
        60.0,
        "a claimed task is taken back this long after its last heartbeat",
        parse=_positive_float,
    )
    max_attempts: int = _setting(
        3, "claims of one task before it fails with 2057", parse=_positive_int
    )
    callback_backoff: tuple[float, ...] = _setting(
        (10.0, 60.0, 300.0),
        "seconds between callback attempts (comma-separated)",
        parse=_backoff,
    )
    callback_timeout: float = _setting(
        10.0,
        "seconds one callback attempt may take in all (connect, send, answer)",
        parse=_positive_float,
    )
    callback_allow: tuple[IPv4Network | IPv6Network, ...] = _setting(
        (),
        "address ranges callbacks may reach although refused by default (comma-separated CIDR)",
        parse=_networks,
    )
    callback_per_host: int = _setting(
        4, "callback attempts in flight to one destination host", parse=_positive_int
    )
    callback_concurrency: int = _setting(
        32, "callback attempts in flight in all (per process)", parse=_positive_int
    )
    database_url: str = _setting("", "SQLAlchemy URL; empty means SQLite at <data_dir>/openkvs.db")
    max_skew_seconds: int = _setting(
        900, "largest accepted clock difference of a signed request", parse=_positive_int
    )
    poll_seconds: float = _setting(
        1.0,
        "how often an idle worker looks for tasks queued by other processes",
        parse=_positive_float,
    )
    worker_pipelines: tuple[str, ...] = _setting(
        (),
        "pipeline names whose tasks the workers take, of every user (comma-separated; empty: all)",
        parse=_pipeline_names,
    )
    drain_seconds: float = _setting(
        10.0,
        "seconds a stopping worker pool (SIGTERM) lets running tasks finish before it "
        "puts them back in the queue",
        parse=_non_negative_float,
    )
    heartbeat_seconds: float = _setting(
        10.0,
        "seconds between a worker's registry heartbeats; `openkvs workers` shows it lost "
        "after 3 missed (and at least lease_seconds)",
        parse=_positive_float,
    )
    api_processes: int = _setting(
        1,
        "processes of `serve` answering API requests on its port (workers run in the first)",
        parse=_positive_int,
    )
    metrics_port: int = _setting(
        0,
        "port where `openkvs worker` serves /metrics (0: none; `serve` serves it on its API port)",
        parse=_port,
    )
    metrics_token: str = _setting(
        "",
        "bearer token /metrics asks of scrapers (Authorization: Bearer <token>); empty: "
        "/metrics is open to anyone who reaches the port",
        secret=True,
    )
    api_threads: int = _setting(
        16,
        "threads of each API process that run requests at once (keep it above "
        "fetch_meta_limit: FetchMetaInfo holds one while it probes)",
        parse=_positive_int,
    )
    key_cache_seconds: float = _setting(
        2.0,
        "seconds `serve` reuses an access key it looked up: a revoked key is refused "
        "within this time (0: look it up for every request)",
        parse=_non_negative_float,
    )
    wave_parallel: int = _setting(
        0, "ffmpeg decoders per long waveform (0: one per core)", parse=int
    )
    task_timeout: float = _setting(
        3600.0,
        "seconds a task's media work may take before it fails with 2038",
        parse=_positive_float,
    )
    ffmpeg_threads: int = _setting(
        0,
        "threads one ffmpeg may use (-threads; 0: ffmpeg chooses, about one per core)",
        parse=_non_negative_int,
    )
    ffmpeg_max_rss_mb: int = _setting(
        0,
        "MiB of resident memory one ffmpeg may use before its task fails with 2002 (0: no limit)",
        parse=_non_negative_int,
    )
    max_output_mb: int = _setting(
        0,
        "MiB one task may write (its scratch files and outputs) before it fails with 2010 "
        "(0: no limit)",
        parse=_non_negative_int,
    )
    split_min_seconds: float = _setting(
        600.0,
        "an avtrans output at least this long is encoded in chunks that any worker may run "
        "(split-and-stitch; 0: never split)",
        parse=_non_negative_float,
    )
    split_chunk_seconds: float = _setting(
        60.0,
        "the length a split transcode's chunks aim at (cut at the source's keyframes)",
        parse=_positive_float,
    )
    pipeline_quota: int = _setting(
        10,
        "default Quota of a pipeline: a user's tasks of it running at once",
        parse=_positive_int,
    )
    max_pipeline_quota: int = _setting(
        50, "largest Quota UpdatePipeline accepts", parse=_positive_int
    )
    log_json: bool = _setting(False, "write logs as JSON lines", parse=_bool)
    log_dir: Path = _setting(
        Path(""),
        "folder where serve and worker also write their logs as JSON lines (one file per "
        "process, read by `openkvs logs`); empty means <data_dir>/logs",
        parse=Path,
    )
    log_keep_days: float = _setting(
        7.0, "days a log file of that folder is kept after its last line", parse=_positive_float
    )
    max_body_bytes: int = _setting(
        1024 * 1024, "largest request body accepted (413 over it)", parse=_positive_int
    )
    header_timeout: float = _setting(
        10.0,
        "seconds a connection has to send a request's complete headers before it is closed",
        parse=_positive_float,
    )
    max_connections: int = _setting(
        1000, "open client connections of `serve`; more are answered 503", parse=_positive_int
    )
    fetch_meta_limit: int = _setting(
        8, "FetchMetaInfo probes running at once (429 Throttling over it)", parse=_positive_int
    )
    fetch_meta_user_limit: int = _setting(
        2, "FetchMetaInfo probes one user may run at once", parse=_positive_int
    )
    master_key: str = _setting(
        "", "the data key (URL-safe base64 of 32 bytes); empty: read or create key_file"
    )
    key_file: Path = _setting(
        Path(""),
        "file holding the data key that seals secrets; empty means <data_dir>/openkvs.key",
        parse=Path,
    )
    public_url: str = _setting(
        "",
        "public base URL of this service (e.g. https://media.example.org), for full object URLs",
        parse=_base_url,
    )
    storage: str = _setting(
        "local",
        "where buckets live: local (folders under <data_dir>/buckets) or s3 (an "
        "S3-compatible store, the s3_* settings)",
        parse=_choice("local", "s3"),
    )
    s3_endpoint_url: str = _setting(
        "", "S3 endpoint (e.g. http://minio:9000); empty: AWS S3 of s3_region", parse=_base_url
    )
    s3_public_endpoint_url: str = _setting(
        "",
        "S3 endpoint that clients reach, for the presigned URLs /objects redirects to "
        "(empty: s3_endpoint_url)",
        parse=_base_url,
    )
    s3_region: str = _setting("us-east-1", "region S3 requests are signed for")
    s3_access_key_id: str = _setting(
        "", "S3 access key id; empty: boto3's own chain (AWS_* variables, instance role)"
    )
    s3_secret_access_key: str = _setting("", "S3 secret access key (never printed)", secret=True)
    s3_addressing_style: str = _setting(
        "path",
        "path (endpoint/bucket/key: MinIO, Ceph, Garage) or virtual (bucket.endpoint/key: "
        "AWS, KS3)",
        parse=_choice("path", "virtual"),
    )
    s3_bucket_prefix: str = _setting(
        "", "S3 bucket names are this plus the openkvs bucket name", parse=_bucket_prefix
    )
    s3_multipart_mb: int = _setting(
        64,
        "MiB from which an output goes up as a multipart upload, in parts of this size "
        "(at least 5)",
        parse=_positive_int,
    )
    s3_acl: bool = _setting(
        True,
        "send DstAcl as x-amz-acl (false for stores without ACLs: AWS buckets with ACLs "
        "disabled, Garage)",
        parse=_bool,
    )
    s3_timeout: float = _setting(
        30.0,
        "seconds one S3 request may wait for the next bytes of an answer (to connect: at most 10)",
        parse=_positive_float,
    )

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'openkvs.db').resolve()}"

    def workers_cores(self) -> int:
        """CPU cores this process may use (for engine-level parallelism)."""
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - not Linux
            return os.cpu_count() or 1

    @property
    def data_key_file(self) -> Path:
        return (
            self.key_file if str(self.key_file) not in ("", ".") else self.data_dir / "openkvs.key"
        )

    @property
    def buckets_dir(self) -> Path:
        return self.data_dir / "buckets"

    @property
    def logs_dir(self) -> Path:
        """Where ``serve`` and ``worker`` write their JSON-lines log files."""
        return self.log_dir if str(self.log_dir) not in ("", ".") else self.data_dir / "logs"

    @property
    def scratch_dir(self) -> Path:
        """Where running tasks keep their temporary files (one folder per task)."""
        return self.data_dir / "scratch"


def env_name(name: str) -> str:
    return f"OPENKVS_{name.upper()}"


def describe() -> list[tuple[str, str, str]]:
    """(environment variable, default, description) for every setting."""
    rows = []
    for f in fields(Settings):
        default = f.default
        if isinstance(default, tuple):
            default = ",".join(f"{v:g}" for v in default)
        rows.append((env_name(f.name), str(default), f.metadata["description"]))
    return rows


def parse(name: str, raw: str) -> Any:
    """The value of setting ``name`` given as text, read as its variable is (a command-line
    option that stands for a setting); ``ValueError`` when it is bad."""
    [found] = [f for f in fields(Settings) if f.name == name]
    return (found.metadata["parse"] or str)(raw)


def load(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from the environment (``os.environ`` by default), then ``overrides``."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        raw = env.get(env_name(f.name))
        if raw is None:
            continue
        parse = f.metadata["parse"] or str
        try:
            values[f.name] = parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{env_name(f.name)}={raw!r}: {exc}") from exc
    settings = replace(Settings(), **values)
    settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    if bool(settings.s3_access_key_id) != bool(settings.s3_secret_access_key):
        raise ConfigError(
            f"{env_name('s3_access_key_id')} and {env_name('s3_secret_access_key')} "
            "go together: set both, or neither (boto3's own credentials)"
        )
    return settings
