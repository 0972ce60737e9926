"""Object storage, configured once for every part of a run: listing and streamed reads, clip and preview
writers, metadata, shards and checks (all through fsspec), and the LanceDB clip store.

One `StorageConfig` (S3 or S3-compatible: endpoint, region, anonymous access, plain HTTP; credentials named
by the environment variables that hold them, never their values) is applied with `configure()`. That puts
it in this process's environment (`CURATOR_STORAGE`, and `FSSPEC_S3`, which fsspec reads when it is
imported) and in fsspec's defaults, and `worker_env()` gives the same variables, with the credentials'
values, for the Ray workers' runtime environment: a worker on another machine sees what the driver sees.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

STORAGE_ENV = "CURATOR_STORAGE"  # the StorageConfig as JSON, in every process of a run
FSSPEC_S3_ENV = "FSSPEC_S3"  # fsspec's own variable: default options of every S3 filesystem


class StorageConfig(BaseModel):
    """How to reach the object store (an empty config: the defaults of s3fs and LanceDB)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint, e.g. http://127.0.0.1:9000 (MinIO, Ceph, moto)"
    )
    region: str | None = Field(default=None, description="bucket region, e.g. us-east-1")
    anonymous: bool = Field(default=False, description="unsigned requests (public buckets)")
    allow_http: bool | None = Field(
        default=None, description="allow a plain-HTTP endpoint (default: when endpoint_url is http://)"
    )
    key_env: str = Field(default="AWS_ACCESS_KEY_ID", description="variable holding the access key id")
    secret_env: str = Field(default="AWS_SECRET_ACCESS_KEY", description="variable holding the secret key")
    token_env: str = Field(default="AWS_SESSION_TOKEN", description="variable holding a session token")

    @classmethod
    def load(cls, source: str | os.PathLike | dict | None) -> StorageConfig:
        """From a dict, a JSON file's path, or None (then the one this process was configured with)."""
        if source is None:
            return current()
        if isinstance(source, dict):
            return cls(**source)
        return cls(**json.loads(Path(source).read_text()))

    @property
    def http(self) -> bool:
        if self.allow_http is not None:
            return self.allow_http
        return bool(self.endpoint_url and self.endpoint_url.startswith("http://"))

    def credentials(self) -> dict[str, str]:
        """The named credential variables that are set here, with their values."""
        names = (self.key_env, self.secret_env, self.token_env)
        return {name: os.environ[name] for name in names if os.environ.get(name)}

    def fsspec_options(self) -> dict:
        """Default options of s3fs filesystems (credentials stay with botocore's own lookup)."""
        options: dict = {}
        if self.endpoint_url:
            options["endpoint_url"] = self.endpoint_url
        if self.region:
            options["client_kwargs"] = {"region_name": self.region}
        if self.anonymous:
            options["anon"] = True
        return options

    def lancedb_options(self) -> dict[str, str]:
        """LanceDB's `storage_options` for an s3:// store: the same endpoint, region and credentials."""
        options: dict[str, str] = {}
        if self.endpoint_url:
            options["aws_endpoint"] = self.endpoint_url
        if self.region:
            options["aws_region"] = self.region
        if self.http:
            options["allow_http"] = "true"
        if self.anonymous:
            options["aws_skip_signature"] = "true"
        names = {self.key_env: "aws_access_key_id", self.secret_env: "aws_secret_access_key"}
        names[self.token_env] = "aws_session_token"
        for variable, value in self.credentials().items():
            options[names[variable]] = value
        return options

    def worker_env(self) -> dict[str, str]:
        """What a worker's environment needs: this config, fsspec's defaults and the credentials' values."""
        return {
            STORAGE_ENV: self.model_dump_json(),
            FSSPEC_S3_ENV: json.dumps(self.fsspec_options()),
            **self.credentials(),
        }


def current() -> StorageConfig:
    """The storage configuration of this process (from $CURATOR_STORAGE; empty when unset)."""
    text = os.environ.get(STORAGE_ENV)
    return StorageConfig.model_validate_json(text) if text else StorageConfig()


def configure(config: StorageConfig) -> StorageConfig:
    """Make `config` this process's storage configuration, for fsspec and the clip store alike, and the
    one Ray workers started from here inherit (local ones through the environment; on a cluster pass
    `worker_env()` in the runtime environment, as `executors.ray.worker_runtime_env` does). The default
    config sets nothing: the process keeps what it has (its environment's, or an outer caller's)."""
    if config == StorageConfig():
        return current()
    _apply(config.fsspec_options())
    os.environ[STORAGE_ENV] = config.model_dump_json()
    os.environ[FSSPEC_S3_ENV] = json.dumps(config.fsspec_options())
    return config


def reset() -> None:
    """Forget the process's storage configuration (back to s3fs' and LanceDB's own defaults)."""
    _apply({})
    os.environ.pop(STORAGE_ENV, None)
    os.environ.pop(FSSPEC_S3_ENV, None)


def _apply(fsspec_options: dict) -> None:
    import fsspec.config

    s3 = fsspec.config.conf.setdefault("s3", {})
    for key in ("endpoint_url", "client_kwargs", "anon"):
        s3.pop(key, None)
    s3.update(fsspec_options)
