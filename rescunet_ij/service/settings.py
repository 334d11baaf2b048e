"""The service's settings, validated before anything starts (pydantic, like every other setting)."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from ..api import format_validation_error
from ..errors import ConfigError

TOKEN_ENV = "RESCUNET_IJ_TOKEN"
"""Environment variable holding the access token (safer than a command-line argument)."""

DEFAULT_PORT = 8765


def default_models_dir() -> Path:
    """``~/rescunet-ij/models``: where trained and uploaded models are kept by default."""
    return Path.home() / "rescunet-ij" / "models"


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (``127.0.0.1``, ``::1``, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:  # a host name: every address it resolves to must be a loopback one
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


class ServiceSettings(BaseModel):
    """How ``rescunet-ij serve`` runs.

    Attributes
    ----------
    host, port
        Where to listen. Only a loopback address is allowed without ``token``. ``port`` 0 picks a
        free port (printed at start).
    device
        The one device every request and job uses: ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``.
    models_dir
        Trained models are saved here, uploaded models are kept under ``uploaded/``, and training
        jobs keep their state under ``.jobs/``. Models loaded "by path" may be anywhere the
        server can read.
    token
        The access token every request must carry (``Authorization: Bearer <token>``); ``None``:
        no token (loopback only).
    max_models
        How many models are kept loaded (least recently used ones are unloaded first).
    max_body_mb
        The largest request body accepted (movies, model and training-set uploads).
    max_queue
        How many requests may wait for the device before new ones are turned away (HTTP 503).
    request_timeout_s
        How long a request may wait for and use the device before it is answered with HTTP 503.
    """

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    device: str = Field(default="auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")
    models_dir: Path = Field(default_factory=default_models_dir)
    token: SecretStr | None = None
    max_models: int = Field(default=4, ge=1, le=64)
    max_body_mb: float = Field(default=2048, gt=0, le=65536)
    max_queue: int = Field(default=64, ge=1, le=10000)
    request_timeout_s: float = Field(default=600, gt=0, le=86400)

    @property
    def max_body_bytes(self) -> int:
        """``max_body_mb`` in bytes."""
        return int(self.max_body_mb * 1024 * 1024)

    @property
    def jobs_dir(self) -> Path:
        """Where training jobs keep their state (one folder per job)."""
        return self.models_dir / ".jobs"

    @property
    def uploads_dir(self) -> Path:
        """Where uploaded model files are kept (named by their content hash)."""
        return self.models_dir / "uploaded"


def make_settings(token_file: Path | None = None, **values: object) -> ServiceSettings:
    """Validated settings; the token comes from ``token_file`` or ``$RESCUNET_IJ_TOKEN``.

    Raises :class:`~rescunet_ij.errors.ConfigError` naming the problem: a value out of range, an
    unreadable or empty token file, or a non-loopback ``host`` without a token.
    """
    token = None
    if token_file is not None:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the token file {token_file}: {exc.strerror}") from None
        if not token:
            raise ConfigError(f"the token file {token_file} is empty; put the token in it")
    elif os.environ.get(TOKEN_ENV):
        token = os.environ[TOKEN_ENV].strip()
    values = {k: v for k, v in values.items() if v is not None}
    try:
        settings = ServiceSettings(token=token, **values)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "service setting")) from None
    if settings.token is not None and len(settings.token.get_secret_value()) < 16:
        raise ConfigError(
            "the access token is too short (fewer than 16 characters); make one with: "
            'python -c "import secrets; print(secrets.token_urlsafe(32))"'
        )
    if settings.token is None and not is_loopback(settings.host):
        raise ConfigError(
            f"refusing to listen on {settings.host}: without an access token the service only "
            f"listens on this machine (127.0.0.1). To serve other machines, set a token: put it "
            f"in a file and pass --token-file FILE, or set ${TOKEN_ENV}; clients then send it as "
            f"'Authorization: Bearer <token>'"
        )
    return settings
