"""Training sets on disk, in the PyJAMAS ReSCU-Net folder layout.

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
the top level of the archive, or inside one top folder) reads like the folder.

Crops are larger than the network window (about twice its size) so the training dataset can move
the window around the object (:class:`rescunet_ij.data.dataset.WindowDataset`).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, OutputExistsError
from ..types import bounding_box

__all__ = [
    "META_FILE",
    "SUBFOLDERS",
    "TrainingSample",
    "read_training_set",
    "samples_from_masks",
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
    "image/, mask/ and prev_mask/ with one TIFF each (e.g. my_set/t0002_obj0001/image/t0002_obj0001.tif)"
)


@dataclass
class TrainingSample:
    """One training example: an object in frame t, with its masks in frames t and t-1.

    Attributes
    ----------
    image
        ``(H, W)`` or ``(C, H, W)`` image crop of frame t (any numeric dtype).
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


# ----------------------------------------------------------------------------- building samples


def _crop_range(p0: int, p1: int, u0: int, u1: int, size_w: int, length: int) -> tuple[int, int]:
    """Crop along one axis: ~2x the window, at least the union extent + window, centred on prev."""
    size = max(2 * size_w, (u1 - u0) + size_w)
    lo = int(np.floor((p0 + p1) / 2 - size / 2))
    hi = lo + size
    # Centring on the previous mask may leave too little room on the side the object moved to.
    lo = min(lo, u0 - size_w // 2)
    hi = max(hi, u1 + (size_w - size_w // 2))
    return max(lo, 0), min(hi, length)


def _warn_skipped(skipped: list[str], what: str) -> None:
    if not skipped:
        return
    shown = "; ".join(skipped[:10]) + (
        f"; and {len(skipped) - 10} more" if len(skipped) > 10 else ""
    )
    warnings.warn(f"skipped {len(skipped)} {what}: {shown}", stacklevel=3)


def samples_from_masks(
    planes: np.ndarray,
    masks: Mapping[int, Mapping[int, np.ndarray]],
    window: int | tuple[int, int],
) -> list[TrainingSample]:
    """Cut training samples from a movie and per-object masks.

    One sample is made for every object and frame ``t`` that has masks of that object in frames
    ``t`` and ``t - 1``. Its crop is about twice the window (at least the bounding box of both
    masks plus one window), centred on the previous mask and clipped to the image.

    Parameters
    ----------
    planes
        ``(N, Y, X)`` or ``(N, C, Y, X)`` movie planes (frames), 0-based frame index first.
    masks
        ``masks[object_id][frame]`` is the ``(Y, X)`` bool mask of that object in that frame.
    window
        The native-pixel window size ``(h, w)`` (or one int) the network will see.

    Returns
    -------
    list of TrainingSample
        Named ``t<frame>_obj<id>`` with the 1-based frame, e.g. ``t0003_obj0002``; sorted by
        frame, then object.

    Raises
    ------
    DataError
        If a mask's size differs from the planes' or a frame index is outside the movie.

    Warns
    -----
    UserWarning
        Once, naming each (object, 1-based frame) skipped because its mask or previous mask is empty.
    """
    planes = np.asarray(planes)
    if planes.ndim not in (3, 4):
        raise DataError(
            f"planes must be (frames, Y, X) or (frames, C, Y, X), got an array of shape {planes.shape}"
        )
    wh, ww = (
        (window, window) if isinstance(window, (int, np.integer)) else tuple(int(v) for v in window)
    )
    if wh < 1 or ww < 1:
        raise DataError(f"window must be positive, got {(wh, ww)}")
    n, (H, W) = planes.shape[0], planes.shape[-2:]
    out: list[tuple[int, int, TrainingSample]] = []
    skipped: list[str] = []
    for obj in sorted(masks):
        frames = masks[obj]
        for t in sorted(frames):
            if not 0 <= t < n:
                raise DataError(
                    f"object {obj} has a mask in frame {t + 1} but the movie has {n} frame(s); "
                    "masks must belong to frames of this movie"
                )
            cur = np.asarray(frames[t], dtype=bool)
            if cur.shape != (H, W):
                raise DataError(
                    f"the mask of object {obj} in frame {t + 1} is {cur.shape[0]}x{cur.shape[1]} pixels "
                    f"but the movie is {H}x{W}; masks must cover the whole frame"
                )
            if t - 1 not in frames:
                continue
            prev = np.asarray(frames[t - 1], dtype=bool)
            pb, cb = bounding_box(prev), bounding_box(cur)
            if pb is None or cb is None:
                which = "its mask in the previous frame" if pb is None else "its mask"
                skipped.append(f"object {obj} frame {t + 1} ({which} is empty)")
                continue
            u = (min(pb[0], cb[0]), max(pb[1], cb[1]), min(pb[2], cb[2]), max(pb[3], cb[3]))
            y0, y1 = _crop_range(pb[0], pb[1], u[0], u[1], wh, H)
            x0, x1 = _crop_range(pb[2], pb[3], u[2], u[3], ww, W)
            image = np.array(planes[t, ..., y0:y1, x0:x1])
            sample = TrainingSample(
                image=image,
                mask=cur[y0:y1, x0:x1].copy(),
                prev_mask=prev[y0:y1, x0:x1].copy(),
                name=f"t{t + 1:04d}_obj{obj:04d}",
            )
            out.append((t, obj, sample))
    _warn_skipped(skipped, "sample(s) with empty masks")
    out.sort(key=lambda x: (x[0], x[1]))
    return [s for _, _, s in out]


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
        for label, m in (("mask", s.mask), ("prev_mask", s.prev_mask)):
            if np.shape(m) != img.shape[-2:]:
                raise DataError(
                    f"sample {name}: the image is {img.shape[-2]}x{img.shape[-1]} pixels but its {label} is "
                    f"{'x'.join(map(str, np.shape(m)))}; they must have the same size"
                )


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


def _is_replaceable_set(folder: Path) -> bool:
    """Whether a non-empty folder looks like a training set (safe to replace with overwrite)."""
    if (folder / META_FILE).is_file():
        return True
    children = [c for c in folder.iterdir() if not c.name.startswith(".")]
    return bool(children) and all(
        c.is_dir() and all((c / sub).is_dir() for sub in SUBFOLDERS) for c in children
    )


def _folder_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


def write_training_set(
    samples: Sequence[TrainingSample],
    out_dir: str | os.PathLike[str],
    *,
    meta: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write samples as a training-set folder, all or nothing.

    Everything is written into a hidden temporary folder beside ``out_dir`` and renamed into place
    at the end, so an interruption never leaves half a set (or destroys the previous one).

    Parameters
    ----------
    samples
        The samples (unique names; masks of the image's size).
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
        If there are no samples, sample names or sizes are invalid, ``out_dir`` is a file, or
        ``overwrite`` would replace a folder that is not a training set.
    """
    samples = list(samples)
    if not samples:
        raise DataError(
            "no training samples to write; draw outlines in at least two consecutive frames"
        )
    _check_samples(samples)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DataError(f"cannot write a training set to {out}: it is a file; give a folder name")
    nonempty = out.is_dir() and any(out.iterdir())
    if nonempty and not overwrite:
        raise OutputExistsError(
            f"the folder {out} already exists and is not empty; pass overwrite=True (CLI: --overwrite) "
            "to replace it, or choose another folder"
        )
    if nonempty and not _is_replaceable_set(out):
        raise DataError(
            f"refusing to replace {out}: it is not a training set (it holds other files); "
            "choose another folder or empty it yourself"
        )
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the folder {parent}: {exc}") from exc

    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.", suffix=".tmp"))
    backup: Path | None = None
    try:
        os.chmod(tmp, _folder_mode())
        for s in samples:
            for sub, array in _tiff_arrays(s).items():
                folder = tmp / s.name / sub
                folder.mkdir(parents=True)
                _write_tiff(folder / f"{s.name}.tif", array)
        (tmp / META_FILE).write_text(
            json.dumps(_meta_dict(samples, meta), indent=2), encoding="utf-8"
        )
        if out.is_dir():
            if nonempty:
                backup = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.", suffix=".old"))
                backup.rmdir()
                out.rename(backup)
            else:
                out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if backup is not None and backup.exists() and not out.exists():
            backup.rename(out)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
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
    exactly the folder layout; it is written atomically.

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
        If ``zip_path`` exists and ``overwrite`` is false.
    DataError
        If the samples or the folder are invalid.
    """
    from ..io.atomic import atomic_write

    if isinstance(samples_or_dir, (str, os.PathLike)):
        samples, read_meta = read_training_set(samples_or_dir)
        read_meta = {
            k: v
            for k, v in read_meta.items()
            if k not in ("n_samples", "package_version", "created")
        }
        meta = {**read_meta, **dict(meta or {})}
    else:
        samples = list(samples_or_dir)
    if not samples:
        raise DataError(
            "no training samples to write; draw outlines in at least two consecutive frames"
        )
    _check_samples(samples)
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
    return Path(zip_path)


# ----------------------------------------------------------------------------- reading

# A file tree: folders are dicts, files are keys (a path or a zip member name) a reader opens.
_Tree = dict


def _hidden(name: str) -> bool:
    return name.startswith((".", "__MACOSX")) or name in ("Thumbs.db", "desktop.ini")


def _folder_tree(path: Path, depth: int) -> _Tree:
    tree: _Tree = {}
    try:
        entries = list(os.scandir(path))
    except OSError as exc:
        raise DataError(f"cannot list the folder {path}: {exc}") from exc
    for e in entries:
        if _hidden(e.name):
            continue
        if e.is_dir():
            tree[e.name] = _folder_tree(Path(e.path), depth - 1) if depth > 1 else {}
        else:
            tree[e.name] = e.path
    return tree


def _zip_tree(zf: zipfile.ZipFile) -> _Tree:
    tree: _Tree = {}
    for info in zf.infolist():
        parts = [p for p in info.filename.replace("\\", "/").split("/") if p]
        if not parts or any(_hidden(p) or p == ".." for p in parts):
            continue
        node = tree
        for p in parts[:-1]:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            if info.is_dir():
                node.setdefault(parts[-1], {})
            else:
                node[parts[-1]] = info.filename
    return tree


def _is_sample(node: Any) -> bool:
    return isinstance(node, dict) and any(isinstance(node.get(s), dict) for s in SUBFOLDERS)


def _locate_root(tree: _Tree, where: str) -> tuple[_Tree, str]:
    """The node holding the sample folders: the top, or a single top folder (zips, nested copies)."""
    if _is_sample(tree):
        raise DataError(
            f"{where} looks like ONE sample folder (it holds {', '.join(s for s in SUBFOLDERS if s in tree)}); "
            f"give the folder that contains the sample folders. {_LAYOUT}"
        )
    if any(_is_sample(v) for v in tree.values()):
        return tree, ""
    dirs = [k for k, v in tree.items() if isinstance(v, dict)]
    if len(dirs) == 1 and any(_is_sample(v) for v in tree[dirs[0]].values()):
        return tree[dirs[0]], dirs[0] + "/"
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
    import tifffile

    path = Path(path)
    if not path.exists():
        raise DataError(
            f"the training set {path} does not exist (current folder: {Path.cwd()}). {_LAYOUT}"
        )
    zf: zipfile.ZipFile | None = None
    if path.is_dir():
        tree = _folder_tree(path, depth=4)
        prefix_where = str(path)

        def read_bytes(key: str) -> bytes:
            return Path(key).read_bytes()

    elif path.is_file() and zipfile.is_zipfile(path):
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise DataError(f"cannot open the zip {path}: {exc}") from exc
        tree = _zip_tree(zf)
        prefix_where = f"{path} (zip)"

        def read_bytes(key: str) -> bytes:
            assert zf is not None
            return zf.read(key)

    else:
        raise DataError(f"the training set {path} is not a folder or a .zip file. {_LAYOUT}")

    try:
        root, inner = _locate_root(tree, prefix_where)
        where_of: Callable[[str], str] = (
            (lambda rel: str(path / inner / rel))
            if zf is None
            else (lambda rel: f"{path}:{inner}{rel}")
        )
        meta = _read_meta(root, read_bytes, where_of)
        samples: list[TrainingSample] = []
        skipped: list[str] = []
        for name in sorted(k for k, v in root.items() if isinstance(v, dict)):
            node = root[name]
            arrays = {}
            for sub in SUBFOLDERS:
                folder = node.get(sub)
                if not isinstance(folder, dict):
                    raise DataError(
                        f"the sample folder {where_of(name)} has no {sub}/ folder "
                        f"(it holds: {', '.join(sorted(node)) or 'nothing'}). {_LAYOUT}"
                    )
                tiffs = sorted(
                    k
                    for k, v in folder.items()
                    if not isinstance(v, dict) and k.lower().endswith(_TIFF_SUFFIXES)
                )
                if len(tiffs) != 1:
                    found = (
                        "no TIFF" if not tiffs else f"{len(tiffs)} TIFFs ({', '.join(tiffs[:3])})"
                    )
                    raise DataError(
                        f"{where_of(name + '/' + sub)} holds {found}; expected exactly one. {_LAYOUT}"
                    )
                where = where_of(f"{name}/{sub}/{tiffs[0]}")
                try:
                    raw = tifffile.imread(io.BytesIO(read_bytes(folder[tiffs[0]])))
                except (
                    Exception
                ) as exc:  # tifffile raises TiffFileError, ValueError, ... for bad files
                    raise DataError(f"cannot read {where}: {exc}; is it a valid TIFF?") from exc
                arrays[sub] = _as_image(raw, where) if sub == "image" else _as_mask(raw, where)
            image, mask, prev = arrays["image"], arrays["mask"], arrays["prev_mask"]
            size = image.shape[-2:]
            if mask.shape != size or prev.shape != size:
                raise DataError(
                    f"the sample {where_of(name)} has an image of {size[0]}x{size[1]} pixels, a mask of "
                    f"{mask.shape[0]}x{mask.shape[1]} and a prev_mask of {prev.shape[0]}x{prev.shape[1]}; "
                    "all three must have the same size"
                )
            if not mask.any() or not prev.any():
                which = " and ".join(
                    w for w, m in (("mask", mask), ("prev_mask", prev)) if not m.any()
                )
                skipped.append(f"{name} (empty {which})")
                continue
            samples.append(TrainingSample(image=image, mask=mask, prev_mask=prev, name=name))
    finally:
        if zf is not None:
            zf.close()
    _warn_skipped(skipped, "training sample(s)")
    if not samples:
        raise DataError(
            f"every sample in {path} has an empty mask or prev_mask ({len(skipped)} skipped); "
            "the masks must contain the object (non-zero pixels)"
        )
    return samples, meta


def _read_meta(
    root: _Tree, read_bytes: Callable[[str], bytes], where_of: Callable[[str], str]
) -> dict[str, Any]:
    key = root.get(META_FILE)
    if key is None or isinstance(key, dict):
        return {}
    try:
        meta = json.loads(read_bytes(key).decode("utf-8"))
    except (OSError, ValueError) as exc:
        warnings.warn(
            f"ignoring {where_of(META_FILE)}: it is not valid metadata ({exc})", stacklevel=3
        )
        return {}
    if not isinstance(meta, dict):
        warnings.warn(f"ignoring {where_of(META_FILE)}: it is not a JSON object", stacklevel=3)
        return {}
    return meta
