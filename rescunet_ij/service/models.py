"""The models a service knows: ids from their contents, a bounded cache of loaded (warm) networks.

A model's id is the start of the SHA-256 of its file, so the same file loaded twice, or loaded by
path and uploaded, is one model. Uploaded files are kept under ``models_dir/uploaded/<id>.rescunet``
(written atomically), so an id stays valid after its network was unloaded from the cache: it is
loaded again on its next use. Loading happens on the device thread (it puts weights on the GPU).
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import api
from ..errors import ConfigError, DataError, ModelFileError

ID_LENGTH = 16


class UnknownModel(DataError):
    """A model id the service does not know (HTTP 404)."""


@dataclass
class ModelEntry:
    """One known model file."""

    id: str
    path: Path
    name: str
    source: str  # "path", "upload" or "trained"


def content_id(data: bytes) -> str:
    """The id of a model file's contents."""
    return hashlib.sha256(data).hexdigest()[:ID_LENGTH]


class ModelRegistry:
    """Known model files and the networks loaded from them (at most ``max_loaded``).

    Parameters
    ----------
    uploads_dir
        Where uploaded files are stored.
    device
        The device networks are loaded onto.
    max_loaded
        How many networks stay loaded; the least recently used is unloaded first.
    """

    def __init__(self, uploads_dir: Path, device: str, max_loaded: int) -> None:
        self.uploads_dir = uploads_dir
        self.device = device
        self.max_loaded = max_loaded
        self._entries: dict[str, ModelEntry] = {}
        self._loaded: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ registering
    def _register(self, data: bytes, path: Path, source: str, name: str | None) -> ModelEntry:
        mid = content_id(data)
        with self._lock:
            entry = self._entries.get(mid)
            if entry is None:
                entry = ModelEntry(mid, path, name or path.stem, source)
                self._entries[mid] = entry
        return entry

    def add_path(self, path: str | Path) -> ModelEntry:
        """Register (and check) a model file on the server's disk; call on the device thread."""
        path = Path(path).expanduser()
        if not path.is_absolute():
            raise DataError(
                f"model path '{path}' is relative; give the absolute path of the model file on "
                "the server"
            )
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise UnknownModel(f"no model file at {path} on the server") from None
        except IsADirectoryError:
            raise DataError(
                f"{path} is a folder; give the path of a .rescunet model file"
            ) from None
        except OSError as exc:
            raise DataError(f"cannot read the model file {path}: {exc.strerror}") from None
        entry = self._register(data, path, "path", None)
        self.get(entry.id)  # loads it: a broken file is refused now, not at the first use
        return entry

    def add_upload(self, data: bytes, filename: str | None) -> ModelEntry:
        """Store an uploaded model file (if new) and load it; call on the device thread."""
        if not data:
            raise DataError("the uploaded model file is empty")
        mid = content_id(data)
        path = self.uploads_dir / f"{mid}.rescunet"
        if not path.exists():
            # Check it before keeping it: a pickle or a broken file is refused and never stored.
            shown = Path(filename or "model.rescunet").name or "model.rescunet"
            with tempfile.TemporaryDirectory(prefix="rescunet-upload-") as tmp:
                check = Path(tmp) / shown
                check.write_bytes(data)
                try:
                    api.load_model(check, device="cpu")
                except (ModelFileError, ConfigError, DataError) as exc:
                    raise type(exc)(
                        str(exc).replace(str(check), f"the uploaded file '{shown}'")
                    ) from None
            api.write_bytes(path, data, overwrite=True)
        stem = Path(filename).stem if filename else mid
        entry = self._register(data, path, "upload", stem)
        self.get(entry.id)
        return entry

    def add_trained(self, path: Path) -> ModelEntry:
        """Register a model a training job just saved (not loaded until it is used)."""
        return self._register(path.read_bytes(), path, "trained", None)

    # ------------------------------------------------------------------ using
    def entry(self, model_id: str) -> ModelEntry:
        """The entry of ``model_id``; :class:`UnknownModel` if there is none."""
        with self._lock:
            entry = self._entries.get(model_id)
        if entry is None:
            raise UnknownModel(
                f"unknown model '{model_id}'; load it first (POST /v1/models/load with its path on "
                "the server, or POST /v1/models/upload with the file) and use the id returned"
            )
        return entry

    def get(self, model_id: str) -> Any:
        """The loaded model (loading it if needed); call on the device thread."""
        entry = self.entry(model_id)
        with self._lock:
            model = self._loaded.get(model_id)
            if model is not None:
                self._loaded.move_to_end(model_id)
                return model
        if not entry.path.is_file():
            raise UnknownModel(
                f"the file of model '{model_id}' ({entry.path}) is gone from the server; load it "
                "again"
            )
        model = api.load_model(entry.path, device=self.device)
        with self._lock:
            self._loaded[model_id] = model
            self._loaded.move_to_end(model_id)
            while len(self._loaded) > self.max_loaded:
                self._loaded.popitem(last=False)
        return model

    def unload(self, model_id: str) -> bool:
        """Drop the network from memory (the entry stays); whether it was loaded."""
        self.entry(model_id)
        with self._lock:
            return self._loaded.pop(model_id, None) is not None

    def describe(self, entry: ModelEntry) -> dict[str, Any]:
        """The JSON form of one entry."""
        with self._lock:
            loaded = entry.id in self._loaded
        return {
            "id": entry.id,
            "name": entry.name,
            "path": str(entry.path),
            "source": entry.source,
            "loaded": loaded,
        }

    def all(self) -> list[dict[str, Any]]:
        """Every known model, loaded ones first."""
        with self._lock:
            entries = list(self._entries.values())
        rows = [self.describe(e) for e in entries]
        return sorted(rows, key=lambda r: (not r["loaded"], r["name"]))
