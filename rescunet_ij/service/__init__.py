"""``rescunet-ij serve``: the engine as an HTTP service (one warm model, one device, any client).

Fiji commands, scripts and notebooks on this machine or another one send frames and outlines;
the service keeps models loaded on its device, runs requests one after another on that device, and
runs training as jobs with progress and cancel. See ``docs/SERVICE.md`` and the OpenAPI page at
``/docs`` of a running service.

Needs the ``service`` extra: ``pip install 'rescunet-ij[service]'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .settings import ServiceSettings

__all__ = ["create_app", "serve"]


def _require() -> None:
    from ..errors import MissingExtraError

    for module, package in (
        ("fastapi", "fastapi"),
        ("uvicorn", "uvicorn"),
        ("multipart", "python-multipart"),
    ):
        try:
            __import__(module)
        except ImportError:
            raise MissingExtraError(package, "service", "rescunet-ij serve") from None


def create_app(settings: ServiceSettings) -> Any:
    """The ASGI app (FastAPI) for ``settings``."""
    _require()
    from .app import create_app as _create

    return _create(settings)


def serve(settings: ServiceSettings, *, announce: Any = print) -> None:
    """Run the service until it is stopped (Ctrl-C or SIGTERM).

    The socket is bound before the app starts, so ``port=0`` gets a free port; ``announce`` is
    called with the line ``rescunet-ij service listening on http://HOST:PORT`` once it is known
    (clients and tests wait for that line or for ``/v1/health``).
    """
    import socket

    _require()
    import uvicorn

    app = create_app(settings)
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        sock.close()
        from ..errors import ConfigError

        raise ConfigError(
            f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}; is another "
            "service running there? Pick another --port (0: any free port)"
        ) from None
    # Listening now: a client that connects as soon as the URL is announced waits in the backlog
    # until the app has started, instead of being refused.
    sock.listen(2048)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    announce(f"rescunet-ij service listening on http://{shown}:{port} (API docs: /docs)")
    server.run(sockets=[sock])
