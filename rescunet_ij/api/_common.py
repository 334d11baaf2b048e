"""Argument checks and plane helpers shared by the API's modules (private).

Everything a user passes goes through here once: movies (any accepted form -> the normalised
movie, frame numbers kept), outlines, models, indices, axis and identity names. Errors name the
argument and what to pass instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..errors import ConfigError, DataError
from ..propagate.frames import describe_frames, frame_index
from ..types import Identity, Outline

if TYPE_CHECKING:
    import xarray as xr

    from ..io.checkpoint import LoadedModel

Axis = Literal["t", "z"]


def _index(value: Any, what: str) -> int | None:
    """A 0-based channel/plane/frame argument: ``None`` or a whole number."""
    return frame_index(value, what)


def _axis(axis: Any) -> Axis:
    if axis not in ("t", "z"):
        raise ConfigError(
            f"axis must be 't' (propagate through time) or 'z' (through the planes of a z-stack); "
            f"got {axis!r}"
        )
    return axis  # type: ignore[return-value]


def _identity(identity: Any) -> Identity:
    try:
        return Identity(identity)
    except ValueError:
        options = ", ".join(i.value for i in Identity)
        raise ConfigError(
            f"identity must be one of {options} (how ROIs are matched to objects); got {identity!r}"
        ) from None


def _offset(movie: Any, dim: str) -> int:
    """The movie's own index of its first frame/plane (its integer ``t``/``z`` labels), else 0."""
    if not hasattr(movie, "coords"):
        return 0
    from ..io.movie import index_origin

    return index_origin(movie, dim)


def _movie(movie: Any) -> xr.DataArray:
    """Any movie the API accepts -> the normalised ``(t, z, c, y, x)`` form, frame numbers kept.

    Accepts a movie from :func:`read_movie`/:func:`as_movie`, any DataArray with known dim names
    (``tyx``, PyImageJ's ...), a 2-D/3-D numpy array (``yx``/``tyx``) or a TIFF path.
    """
    if movie is None:
        raise DataError(
            "movie is None; pass a movie from api.read_movie('movie.tif') or "
            "api.as_movie(array, dims='tyx')"
        )
    if isinstance(movie, (str, os.PathLike)):
        from ._movies import read_movie

        return read_movie(movie)
    from ..io.movie import as_movie as _as

    if not hasattr(movie, "dims"):  # numpy arrays and nested lists
        if isinstance(movie, (dict, set)) or np.isscalar(movie):
            raise DataError(
                f"movie must be an image array or a movie from api.read_movie; got "
                f"{type(movie).__name__}"
            )
    return _as(movie)  # keeps the frame/plane numbers of a cut-out (its t/z labels)


def _extent(movie: xr.DataArray) -> tuple[int, int, int, int, int]:
    """``(t, z, c, y, x)`` sizes counted from the movie's frame 0.

    A cut-out counts the frames before it, so the positions written for it are the original
    movie's.
    """
    t = _offset(movie, "t") + int(movie.sizes["t"])
    z = _offset(movie, "z") + int(movie.sizes["z"])
    return t, z, int(movie.sizes["c"]), int(movie.sizes["y"]), int(movie.sizes["x"])


def _outlines(outlines: Any, movie: xr.DataArray) -> list[Outline]:
    """Outlines as given (a list, one outline, or a RoiSet path) -> a checked list."""
    if outlines is None:
        raise DataError(
            "outlines is None; pass the objects' outlines, e.g. "
            "api.read_outlines('RoiSet.zip', movie) or api.outlines_from_labels(labels)"
        )
    if isinstance(outlines, (str, os.PathLike)):
        from ._movies import read_outlines

        return read_outlines(outlines, movie)
    if isinstance(outlines, Outline):
        return [outlines]
    try:
        items = list(outlines)
    except TypeError:
        raise DataError(
            f"outlines must be a list of Outline objects; got {type(outlines).__name__}"
        ) from None
    for i, o in enumerate(items):
        if not isinstance(o, Outline):
            raise DataError(
                f"outlines[{i}] is a {type(o).__name__}, not an Outline; build outlines with "
                "api.read_outlines or rescunet_ij.types.Outline(object_id, frame, polygon)"
            )
    return items


def _loaded(model: Any) -> LoadedModel:
    from ..io.checkpoint import LoadedModel

    if isinstance(model, LoadedModel):
        return model
    if model is None:
        raise DataError(
            "model is None; pass a model file (.rescunet) or api.load_model(path), or the "
            ".model of api.train's result"
        )
    from ._training import load_model

    return load_model(model)


def _planes(movie: xr.DataArray, channel: int | None, z: int | None, axis: Axis) -> np.ndarray:
    from ..io.movie import select_plane_series

    # select_plane_series counts planes from the cut-out's first one.
    local_z = None if z is None else z - _offset(movie, "z")
    if local_z is not None and local_z < 0:
        raise DataError(
            f"z-plane {z + 1} is not in this movie (its planes start at {z - local_z + 1})"
        )
    planes, _info = select_plane_series(movie, channel=channel, z=local_z, axis=axis)
    return planes


def _plane_source(movie: xr.DataArray, channel: int | None, z: int | None, axis: Axis) -> Any:
    """The planes to propagate: in memory for an in-memory movie, plane by plane for a lazy one.

    A movie read lazily (:func:`rescunet_ij.io.tiff.read_movie` of a big TIFF, an OME-Zarr) stays
    on disk: the engine reads the prompt frame and the current frame only
    (:class:`rescunet_ij.io.movie.PlaneSeries`).
    """
    from ..io.movie import is_lazy, lazy_plane_series

    if not is_lazy(movie):
        return _planes(movie, channel, z, axis)
    local_z = None if z is None else z - _offset(movie, "z")
    if local_z is not None and local_z < 0:
        return _planes(movie, channel, z, axis)  # the same error as for an in-memory movie
    series, _info = lazy_plane_series(movie, channel=channel, z=local_z, axis=axis)
    return series


def _index_of(outline: Outline, axis: Axis) -> int:
    """The position of an outline along the propagation axis."""
    return outline.frame if axis == "t" else outline.z


def _relevant(
    outlines: Iterable[Outline], axis: Axis, z: int | None, frame: int | None
) -> list[Outline]:
    """Outlines in the plane series being processed (the chosen z for t, the frame for z)."""
    out = []
    for o in outlines:
        if axis == "t" and z is not None and o.z != z:
            continue
        if axis == "z" and frame is not None and o.frame != frame:
            continue
        out.append(o)
    return out


def _none_relevant(outlines: list[Outline], axis: Axis, z: int | None, frame: int | None) -> str:
    """Why no outline lies in the chosen plane series, and what to pass instead."""
    if not outlines:
        return "there are no outlines; outline the objects on the first frame"
    if axis == "t" and z is not None:
        planes = describe_frames({o.z for o in outlines})
        return (
            f"no outlines on z-plane {z + 1}; the outlines are on z-plane(s) {planes}: pick one "
            f"of those with --z (Python: z=, 0-based)"
        )
    frames = describe_frames({o.frame for o in outlines})
    return (
        f"no outlines on frame {(frame or 0) + 1}, the time point of this z-stack; the outlines "
        f"are on frame(s) {frames}"
    )


def _masks_by_object(
    outlines: Iterable[Outline], shape: tuple[int, int], axis: Axis, first: int
) -> dict[int, dict[int, np.ndarray]]:
    """``{object: {plane index counted from the series' first plane: mask}}``."""
    from ..geometry import polygon_to_mask

    masks: dict[int, dict[int, np.ndarray]] = {}
    for o in outlines:
        masks.setdefault(o.object_id, {})[_index_of(o, axis) - first] = polygon_to_mask(
            o.polygon, shape
        )
    return masks


def _default_z(movie: xr.DataArray, z: int | None, axis: Axis) -> int | None:
    if axis == "t" and z is None and int(movie.sizes["z"]) == 1:
        return _offset(movie, "z")
    return z
