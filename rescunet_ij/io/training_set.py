"""Training sets on disk, in the PyJAMAS ReSCU-Net folder layout (a folder or a ``.zip`` of it).

A training set is a folder with one subfolder per *sample* (one object in one frame). Each sample
folder holds three subfolders with one TIFF each::

    my_set/
      rescunet_training_set.json        (written by rescunet-ij; optional when reading)
      t0002_obj0001/
        image/t0002_obj0001.tif         the image around the object in frame t (2-D, or (C, H, W))
        mask/t0002_obj0001.tif          the object's mask in frame t (the target), 0/255
        prev_mask/t0002_obj0001.tif     the object's mask in frame t-1 (the prompt), 0/255
      t0003_obj0001/
        ...

PyJAMAS writes and reads the same layout (without the JSON file, with masks stored as 0/1 or
bool), so sets made by either program work in both. A ``.zip`` of the layout (sample folders at
the top level of the archive, or inside one top folder) is read by the same code as a folder:
the reader walks a :class:`pathlib.Path` or a :class:`zipfile.Path`.

Writing is all or nothing: a folder is built beside its destination and renamed into place, a
zip goes through :func:`rescunet_ij.io.atomic.atomic_write`. :func:`check_training_set_output`
and :func:`check_training_zip_output` apply the same exists/overwrite rules up front, so a caller
writing both can refuse before doing any work. The samples themselves are cut from a movie by
:func:`rescunet_ij.data.samples.samples_from_masks`.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import tempfile
import warnings
import weakref
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import DataError, OutputExistsError
from .atomic import atomic_write, check_overwrite
from .identity import short_list

__all__ = [
    "META_FILE",
    "SUBFOLDERS",
    "TrainingSample",
    "check_training_set_output",
    "check_training_zip_output",
    "read_training_set",
    "read_training_set_meta",
    "write_training_set",
    "write_training_zip",
]

META_FILE = "rescunet_training_set.json"
"""Name of the optional metadata file at the top of a training set."""

SUBFOLDERS = ("image", "mask", "prev_mask")
"""The three folders every sample folder holds, one TIFF each."""

_TIFF_SUFFIXES = (".tif", ".tiff")
_FORMAT = "rescunet-ij-training-set"
_LAYOUT = (
    "A training set is a folder (or .zip) with one subfolder per sample; each sample folder holds "
    "image/, mask/ and prev_mask/ with one TIFF each (e.g. "
    "my_set/t0002_obj0001/image/t0002_obj0001.tif)"
)


@dataclass
class TrainingSample:
    """One training example: an object in frame t, with its masks in frames t and t-1.

    Attributes
    ----------
    image
        ``(H, W)`` or ``(C, H, W)`` image crop of frame t (bool, integer or float).
    mask
        ``(H, W)`` bool: the object in frame t (the target).
    prev_mask
        ``(H, W)`` bool: the object in frame t-1 (the prompt), in the same crop coordinates.
    name
        Folder name of the sample, e.g. ``t0003_obj0002`` (1-based frame and object id).
    """

    image: np.ndarray
    mask: np.ndarray
    prev_mask: np.ndarray
    name: str

    @property
    def shape(self) -> tuple[int, int]:
        """Spatial size ``(H, W)`` of the crop."""
        return tuple(self.mask.shape)  # type: ignore[return-value]

    @property
    def channels(self) -> int:
        """Number of image channels (1 for a 2-D image)."""
        return 1 if self.image.ndim == 2 else int(self.image.shape[0])


def warn_skipped(skipped: Sequence[str], what: str, stacklevel: int = 3) -> None:
    """Warn once about the samples left out, e.g. ``skipped 2 training sample(s): a, b``."""
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} {what}: {short_list(list(skipped))}", stacklevel=stacklevel
        )


# ----------------------------------------------------------------------------- checking outputs


def _is_replaceable_set(folder: Path) -> bool:
    """Whether a non-empty folder looks like a training set (safe to replace with overwrite)."""
    if (folder / META_FILE).is_file():
        return True
    children = [c for c in folder.iterdir() if not c.name.startswith(".")]
    return bool(children) and all(
        c.is_dir() and all((c / sub).is_dir() for sub in SUBFOLDERS) for c in children
    )


def check_training_set_output(out_dir: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Check that a training-set folder may be written, before any work is done.

    Parameters
    ----------
    out_dir
        The folder :func:`write_training_set` would create.
    overwrite
        Whether an existing non-empty training-set folder may be replaced.

    Returns
    -------
    Path
        ``out_dir`` as a :class:`~pathlib.Path`.

    Raises
    ------
    OutputExistsError
        If ``out_dir`` exists, is not empty and ``overwrite`` is false.
    DataError
        If ``out_dir`` is a file, or ``overwrite`` would replace a folder that is not a training
        set (it holds other files).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DataError(f"cannot write a training set to {out}: it is a file; give a folder name")
    if not (out.is_dir() and any(out.iterdir())):
        return out
    if not overwrite:
        raise OutputExistsError(
            f"the folder {out} already exists and is not empty; pass overwrite=True (CLI: "
            "--overwrite) to replace it, or choose another folder"
        )
    if not _is_replaceable_set(out):
        raise DataError(
            f"refusing to replace {out}: it is not a training set (it holds other files); "
            "choose another folder or empty it yourself"
        )
    return out


def check_training_zip_output(zip_path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Check that a training-set zip may be written, before any work is done.

    Parameters
    ----------
    zip_path
        The archive :func:`write_training_zip` would write.
    overwrite
        Whether an existing file may be replaced.

    Returns
    -------
    Path
        ``zip_path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    OutputExistsError
        If ``zip_path`` exists and ``overwrite`` is false.
    DataError
        If ``zip_path`` is a folder, or a file stands where its folder should be.
    """
    path = check_overwrite(zip_path, overwrite)
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise DataError(
                    f"cannot write {path}: {parent} is a file, not a folder; choose another path"
                )
            break
    return path


# ----------------------------------------------------------------------------- writing


def _check_samples(samples: Sequence[TrainingSample]) -> None:
    seen: set[str] = set()
    for s in samples:
        name = str(s.name)
        if (
            not name
            or name in (".", "..")
            or any(c in name for c in '/\\:*?"<>|')
            or name.startswith(".")
        ):
            raise DataError(
                f"sample name {name!r} cannot be a folder name; use letters, digits, '_' and '-'"
            )
        if name in seen:
            raise DataError(f"two samples are named {name!r}; sample names must be unique")
        seen.add(name)
        img = np.asarray(s.image)
        if img.ndim not in (2, 3):
            raise DataError(
                f"sample {name}: image must be (H, W) or (C, H, W), got shape {img.shape}"
            )
        if img.dtype.kind not in "biuf":
            raise DataError(
                f"sample {name}: the image holds {img.dtype} values; a TIFF image needs bool, "
                "integer or float pixels -- convert it first, e.g. image.astype(np.float32)"
            )
        for label, m in (("mask", s.mask), ("prev_mask", s.prev_mask)):
            if np.shape(m) != img.shape[-2:]:
                raise DataError(
                    f"sample {name}: the image is {img.shape[-2]}x{img.shape[-1]} pixels but its "
                    f"{label} is {'x'.join(map(str, np.shape(m)))}; they must have the same size"
                )


def _checked(samples: Sequence[TrainingSample]) -> list[TrainingSample]:
    samples = list(samples)
    if not samples:
        raise DataError(
            "no training samples to write; draw outlines in at least two consecutive frames"
        )
    _check_samples(samples)
    return samples


def _tiff_arrays(sample: TrainingSample) -> dict[str, np.ndarray]:
    image = np.asarray(sample.image)
    if image.dtype == bool:
        image = image.astype(np.uint8)
    return {
        "image": image,
        "mask": np.asarray(sample.mask, dtype=bool).astype(np.uint8) * np.uint8(255),
        "prev_mask": np.asarray(sample.prev_mask, dtype=bool).astype(np.uint8) * np.uint8(255),
    }


def _write_tiff(target: str | os.PathLike[str] | io.BytesIO, array: np.ndarray) -> None:
    import tifffile

    # minisblack: a (3, H, W) image is three channels, never RGB.
    tifffile.imwrite(target, array, photometric="minisblack")


def _meta_dict(samples: Sequence[TrainingSample], meta: Mapping[str, Any] | None) -> dict[str, Any]:
    from .. import __version__

    out: dict[str, Any] = {
        "format": _FORMAT,
        "format_version": 1,
        "window_size": None,
        "source": None,
        "pixel_size": None,
    }
    out.update(dict(meta or {}))
    out["n_samples"] = len(samples)
    out["package_version"] = __version__
    out["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for key, value in list(out.items()):
        if isinstance(value, (tuple, np.ndarray)):
            out[key] = list(np.asarray(value).tolist())
        elif isinstance(value, Path):
            out[key] = str(value)
        elif isinstance(value, np.generic):
            out[key] = value.item()
    return out


def _folder_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


def _fill_folder(folder: Path, samples: Sequence[TrainingSample], meta: dict[str, Any]) -> None:
    for s in samples:
        for sub, array in _tiff_arrays(s).items():
            (folder / s.name / sub).mkdir(parents=True)
            _write_tiff(folder / s.name / sub / f"{s.name}.tif", array)
    (folder / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")


def _move_into_place(new: Path, out: Path) -> None:
    """Rename the finished folder ``new`` to ``out``; an old ``out`` is removed only afterwards."""
    backup: Path | None = None
    emptied = False
    try:
        if out.is_dir():
            if any(out.iterdir()):
                backup = Path(
                    tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old")
                )
                backup.rmdir()
                out.rename(backup)
            else:
                out.rmdir()
                emptied = True
        new.rename(out)
    except BaseException:
        if backup is not None and backup.exists() and not out.exists():
            backup.rename(out)
        elif emptied and not out.exists():
            out.mkdir()
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def write_training_set(
    samples: Sequence[TrainingSample],
    out_dir: str | os.PathLike[str],
    *,
    meta: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write samples as a training-set folder, all or nothing.

    Everything is written into a hidden temporary folder beside ``out_dir`` and renamed into place
    at the end, so a failure or an interruption leaves neither half a set nor the temporary
    folder, and an existing set is replaced (``overwrite=True``) only once the new one is
    complete.

    Parameters
    ----------
    samples
        The samples (unique names; bool, integer or float images; masks of the image's size).
    out_dir
        The training-set folder to create.
    meta
        Extra metadata for ``rescunet_training_set.json`` (e.g. ``window_size``, ``source``,
        ``pixel_size``); ``n_samples``, ``package_version`` and ``created`` are filled in.
    overwrite
        Replace an existing non-empty training-set folder.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    OutputExistsError
        If ``out_dir`` exists and is not empty, and ``overwrite`` is false.
    DataError
        If there are no samples, sample names, sizes or pixel types are invalid, ``out_dir`` is a
        file, ``overwrite`` would replace a folder that is not a training set, or writing fails
        (disk full, a name too long for the file system, ...).
    """
    samples = _checked(samples)
    out = check_training_set_output(out_dir, overwrite)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the folder {out.parent}: {exc}") from exc
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        os.chmod(tmp, _folder_mode())
        _fill_folder(tmp, samples, _meta_dict(samples, meta))
        _move_into_place(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(
            f"cannot write the training set {out}: {exc}. Nothing was written (an existing set "
            "is left as it was); check the disk (free space, permissions) and the sample names, "
            "or choose another folder"
        ) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def write_training_zip(
    samples_or_dir: Sequence[TrainingSample] | str | os.PathLike[str],
    zip_path: str | os.PathLike[str],
    overwrite: bool = False,
    *,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write a training set as one ``.zip`` (e.g. ``testtrain.zip`` for the Colab notebook).

    The archive holds the sample folders at its top level plus ``rescunet_training_set.json``,
    exactly the folder layout; it is written atomically (a failure leaves no file behind and an
    existing archive untouched).

    Parameters
    ----------
    samples_or_dir
        Samples, or a training-set folder (or zip) to pack (it is read and checked first).
    zip_path
        The archive to write.
    overwrite
        Replace an existing archive.
    meta
        Extra metadata (merged over the metadata of a folder given as ``samples_or_dir``).

    Returns
    -------
    Path
        ``zip_path``.

    Raises
    ------
    OutputExistsError
        If ``zip_path`` exists and ``overwrite`` is false (checked before anything is read).
    DataError
        If the samples or the folder are invalid.
    """
    zip_path = check_training_zip_output(zip_path, overwrite)
    if isinstance(samples_or_dir, (str, os.PathLike)):
        samples, read_meta = read_training_set(samples_or_dir)
        kept = {
            k: v
            for k, v in read_meta.items()
            if k not in ("n_samples", "package_version", "created")
        }
        meta = {**kept, **dict(meta or {})}
    else:
        samples = samples_or_dir
    samples = _checked(samples)
    with (
        atomic_write(zip_path, "wb", overwrite=overwrite) as fh,
        zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf,
    ):
        for s in samples:
            for sub, array in _tiff_arrays(s).items():
                buf = io.BytesIO()
                _write_tiff(buf, array)
                zf.writestr(f"{s.name}/{sub}/{s.name}.tif", buf.getvalue())
        zf.writestr(META_FILE, json.dumps(_meta_dict(samples, meta), indent=2))
    return zip_path


# ----------------------------------------------------------------------------- reading


class _Node(Protocol):
    """What the reader uses of a folder or file (:class:`pathlib.Path`, :class:`zipfile.Path`)."""

    @property
    def name(self) -> str: ...
    def is_dir(self) -> bool: ...
    def is_file(self) -> bool: ...
    def iterdir(self) -> Iterator[Any]: ...
    def read_bytes(self) -> bytes: ...
    def __truediv__(self, other: str) -> Any: ...


_ZIP_CHILDREN: weakref.WeakKeyDictionary[Any, dict[str, list[str]]] = weakref.WeakKeyDictionary()


class _ZipPath(zipfile.Path):
    """A :class:`zipfile.Path` that lists a folder from an index of the archive built once.

    CPython's ``zipfile.Path.iterdir`` scans every name in the archive on each call, so walking a
    set of n samples (4n folders) costs O(n^2): about 90 s for 2,000 samples. With the index it is
    O(n). Everything else (``/``, ``is_dir``, ``read_bytes``) is zipfile.Path's own.
    """

    def iterdir(self) -> Iterator[_ZipPath]:
        """The entries of this folder of the archive."""
        if not self.is_dir():
            raise ValueError(f"{self.at!r} is a file, not a folder")
        children = _ZIP_CHILDREN.get(self.root)
        if children is None:
            children = {}
            for name in self.root.namelist():  # zipfile.Path adds the implied folders
                parent = name.rstrip("/").rpartition("/")[0]
                children.setdefault(f"{parent}/" if parent else "", []).append(name)
            _ZIP_CHILDREN[self.root] = children
        return (type(self)(self.root, at) for at in children.get(self.at, ()))


def _hidden(name: str) -> bool:
    return name.startswith((".", "__MACOSX")) or name in ("Thumbs.db", "desktop.ini")


def _entries(node: _Node, where: str) -> dict[str, _Node]:
    try:
        return {c.name: c for c in node.iterdir() if not _hidden(c.name)}
    except OSError as exc:
        raise DataError(f"cannot list the folder {where}: {exc}") from exc


def _is_sample(node: _Node) -> bool:
    return node.is_dir() and any((node / s).is_dir() for s in SUBFOLDERS)


def _locate_root(top: _Node, where: str) -> tuple[_Node, str]:
    """The folder holding the sample folders: the top, or a single top folder (zips, copies)."""
    if _is_sample(top):
        held = ", ".join(s for s in SUBFOLDERS if (top / s).is_dir())
        raise DataError(
            f"{where} looks like ONE sample folder (it holds {held}); give the folder that "
            f"contains the sample folders. {_LAYOUT}"
        )
    entries = _entries(top, where)
    if any(_is_sample(c) for c in entries.values()):
        return top, ""
    dirs = [c for c in entries.values() if c.is_dir()]
    if len(dirs) == 1 and any(_is_sample(c) for c in _entries(dirs[0], where).values()):
        return dirs[0], dirs[0].name + "/"
    raise DataError(f"{where} holds no sample folders. {_LAYOUT}")


def _as_image(array: np.ndarray, where: str) -> np.ndarray:
    a = np.asarray(array)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3 and a.shape[-1] in (3, 4) and a.shape[0] > 4:
        a = np.moveaxis(a, -1, 0)  # RGB(A) stored interleaved -> channels first
    if a.ndim not in (2, 3):
        raise DataError(
            f"{where} has shape {array.shape}; expected a 2-D image or (channels, H, W)"
        )
    if a.dtype == bool:
        a = a.astype(np.uint8)
    return a


def _as_mask(array: np.ndarray, where: str) -> np.ndarray:
    a = np.asarray(array)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        a = a[..., :3].any(axis=-1)  # an RGB mask: any coloured pixel is foreground
    if a.ndim != 2:
        raise DataError(
            f"{where} has shape {array.shape}; a mask must be a 2-D image (0 = background)"
        )
    return a > 0


def _read_sample_tiff(node: _Node, where: str) -> np.ndarray:
    import tifffile

    from .tiff import TiffLog

    try:
        with TiffLog() as log:
            data = tifffile.imread(io.BytesIO(node.read_bytes()))
    except (
        OSError,
        ValueError,
        struct.error,
        IndexError,
        KeyError,
        TypeError,
        RuntimeError,
    ) as exc:
        # tifffile raises TiffFileError (a ValueError), OSError, ...; imagecodecs RuntimeErrors
        raise DataError(f"cannot read {where}: {exc}; is it a valid TIFF?") from exc
    if log.messages():
        warnings.warn(
            f"{where}: the TIFF reader reported: {'; '.join(log.messages())}", stacklevel=5
        )
    return data


def _read_sample(node: _Node, name: str, where: Callable[[str], str]) -> TrainingSample:
    arrays: dict[str, np.ndarray] = {}
    for sub in SUBFOLDERS:
        folder = node / sub
        if not folder.is_dir():
            held = ", ".join(sorted(_entries(node, where(name)))) or "nothing"
            raise DataError(
                f"the sample folder {where(name)} has no {sub}/ folder (it holds: {held}). "
                f"{_LAYOUT}"
            )
        files = _entries(folder, where(f"{name}/{sub}"))
        tiffs = sorted(
            k for k, v in files.items() if v.is_file() and k.lower().endswith(_TIFF_SUFFIXES)
        )
        if len(tiffs) != 1:
            found = "no TIFF" if not tiffs else f"{len(tiffs)} TIFFs ({', '.join(tiffs[:3])})"
            raise DataError(
                f"{where(name + '/' + sub)} holds {found}; expected exactly one. {_LAYOUT}"
            )
        at = where(f"{name}/{sub}/{tiffs[0]}")
        raw = _read_sample_tiff(files[tiffs[0]], at)
        arrays[sub] = _as_image(raw, at) if sub == "image" else _as_mask(raw, at)
    image, mask, prev = arrays["image"], arrays["mask"], arrays["prev_mask"]
    size = image.shape[-2:]
    if mask.shape != size or prev.shape != size:
        raise DataError(
            f"the sample {where(name)} has an image of {size[0]}x{size[1]} pixels, a mask of "
            f"{mask.shape[0]}x{mask.shape[1]} and a prev_mask of {prev.shape[0]}x{prev.shape[1]}"
            "; all three must have the same size"
        )
    return TrainingSample(image=image, mask=mask, prev_mask=prev, name=name)


def _read_meta(root: _Node, where: str) -> dict[str, Any]:
    node = root / META_FILE
    if not node.is_file():
        return {}
    try:
        meta = json.loads(node.read_bytes().decode("utf-8"))
    except (OSError, ValueError) as exc:
        warnings.warn(f"ignoring {where}: it is not valid metadata ({exc})", stacklevel=4)
        return {}
    if not isinstance(meta, dict):
        warnings.warn(f"ignoring {where}: it is not a JSON object", stacklevel=4)
        return {}
    return meta


def _read_tree(
    top: _Node, where_top: str, where: Callable[[str], str]
) -> tuple[list[TrainingSample], dict[str, Any]]:
    root, inner = _locate_root(top, where_top)

    def at(rel: str) -> str:
        return where(inner + rel)

    meta = _read_meta(root, at(META_FILE))
    samples: list[TrainingSample] = []
    skipped: list[str] = []
    entries = _entries(root, at(""))
    for name in sorted(k for k, v in entries.items() if v.is_dir()):
        sample = _read_sample(entries[name], name, at)
        empty = [
            w for w, m in (("mask", sample.mask), ("prev_mask", sample.prev_mask)) if not m.any()
        ]
        if empty:
            skipped.append(f"{name} (empty {' and '.join(empty)})")
            continue
        samples.append(sample)
    warn_skipped(skipped, "training sample(s)", stacklevel=4)
    if not samples:
        raise DataError(
            f"every sample in {where_top} has an empty mask or prev_mask ({len(skipped)} "
            "skipped); the masks must contain the object (non-zero pixels)"
        )
    return samples, meta


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"cannot open the zip {path}: {exc}") from exc
    odd = [n for n in zf.namelist() if "\\" in n]
    if odd:
        zf.close()
        raise DataError(
            f"{path} names its folders with backslashes ({odd[0]!r}), as some Windows tools "
            "(older PowerShell Compress-Archive) write them, so its folders cannot be told "
            "apart; make the zip again with 'rescunet-ij export-training-zip FOLDER', Windows "
            "Explorer (Send to > Compressed (zipped) folder) or 7-Zip"
        )
    return zf


def read_training_set(path: str | os.PathLike[str]) -> tuple[list[TrainingSample], dict[str, Any]]:
    """Read a training set: a folder in the layout above, or a ``.zip`` of it.

    Parameters
    ----------
    path
        The training-set folder or zip. Sets written by PyJAMAS (masks 0/1, 0/255 or bool, no
        JSON file) are accepted, as are zips with the sample folders inside one top folder.

    Returns
    -------
    samples : list of TrainingSample
        Sorted by name; samples whose mask or previous mask is empty are skipped (with a warning).
    meta : dict
        The contents of ``rescunet_training_set.json``, or ``{}`` if the set has none.

    Raises
    ------
    DataError
        If the path is missing or not a folder/zip, no sample folders are found, a sample lacks
        ``image``/``mask``/``prev_mask`` or its TIFF (or has several), a TIFF cannot be read, the
        image and masks differ in size, or every sample is empty.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"the training set {path} does not exist (current folder: {Path.cwd()}). {_LAYOUT}"
        )
    if path.is_dir():
        return _read_tree(path, str(path), lambda rel: str(path / rel) if rel else str(path))
    if path.is_file() and zipfile.is_zipfile(path):
        with _open_zip(path) as zf:
            return _read_tree(_ZipPath(zf), f"{path} (zip)", lambda rel: f"{path}:{rel}")
    raise DataError(f"the training set {path} is not a folder or a .zip file. {_LAYOUT}")


def read_training_set_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a training set (folder or zip) without reading its samples.

    Parameters
    ----------
    path
        The training-set folder or zip.

    Returns
    -------
    dict
        The contents of ``rescunet_training_set.json``, or ``{}`` if the set has none
        (PyJAMAS sets).

    Raises
    ------
    DataError
        If the path is missing or not a folder/zip, or holds no sample folders.
    """
    path = Path(path)
    if path.is_dir():
        root, inner = _locate_root(path, str(path))
        return _read_meta(root, str(path / inner / META_FILE))
    if path.is_file() and zipfile.is_zipfile(path):
        with _open_zip(path) as zf:
            root, inner = _locate_root(_ZipPath(zf), f"{path} (zip)")
            return _read_meta(root, f"{path}:{inner}{META_FILE}")
    if not path.exists():
        raise DataError(
            f"the training set {path} does not exist (current folder: {Path.cwd()}). {_LAYOUT}"
        )
    raise DataError(f"the training set {path} is not a folder or a .zip file. {_LAYOUT}")
