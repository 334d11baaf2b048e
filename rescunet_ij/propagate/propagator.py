"""The propagation engine: a ReSCU-Net applied frame after frame, all objects batched together.

Usage (what :func:`rescunet_ij.api.iter_propagate` does)::

    prop = Propagator(loaded_model, PropagateConfig(batch_size=32))
    state = prop.init_state(planes)              # (N, Y, X) along t or z
    prop.add_outline(state, outline)             # the user's outlines on the start frame
    for result in prop.propagate(state, start_frame=0):
        ...                                      # one FrameResult per frame, as soon as it is ready

For every frame the previous frame's mask of each object (its *prompt*) decides where windows are
cut (:func:`rescunet_ij.data.windows.plan_windows`); the windows of **all** objects go through the
network together, ``config.batch_size`` per forward pass; overlapping windows of one object are
averaged; the probabilities are thresholded, holes filled, the component that best matches the
prompt kept, and the mask eroded. An object whose mask becomes smaller than ``config.min_area`` is
*lost*: a :class:`ObjectLostWarning` is issued and it is not propagated further.

A user correction (:meth:`Propagator.set_frame`) replaces a frame's prompts and forgets the
predictions after it, so the next :meth:`Propagator.propagate` recomputes them; the user's own
outlines on later frames are kept and used as prompts when propagation reaches them.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from .. import geometry
from ..config import PropagateConfig
from ..data.motion import (
    NO_SHIFT,
    Shift,
    global_motion,
    object_motion,
    search_radius,
    shift_mask,
)
from ..data.windows import extract_windows, from_network, plan_windows, to_network
from ..device import autocast_dtype, is_out_of_memory, resolve_device
from ..errors import ConfigError, DataError, StateError
from ..io.movie import PlaneSeries
from ..model.memory import fit_batch_size
from ..types import FrameResult, ObjectMask, ObjectResult, ObjectStatus, Outline
from .canvas import ObjectJob, at_edge, share_pixels, touches_border
from .frames import frame_index, frame_name, resolve_frame_range
from .state import PropagationState

if TYPE_CHECKING:
    from ..io.checkpoint import LoadedModel

__all__ = ["ObjectLostWarning", "Propagator"]

Direction = Literal["forward", "reverse", "both"]


class ObjectLostWarning(UserWarning):
    """An object was lost: its prediction vanished (below ``min_area``) or failed a sanity check."""


class Propagator:
    """Applies a trained ReSCU-Net to a series of planes, SAM-2-video-predictor style.

    Parameters
    ----------
    model
        A :class:`~rescunet_ij.io.checkpoint.LoadedModel`. Its network is moved to the configured
        device **in place** and put in eval mode.
    config
        Propagation settings; defaults to :class:`~rescunet_ij.config.PropagateConfig` ``()``.

    Raises
    ------
    ConfigError
        If the configured device is not available.
    """

    def __init__(self, model: LoadedModel, config: PropagateConfig | None = None) -> None:
        if config is None:
            config = PropagateConfig()
        if not isinstance(config, PropagateConfig):
            raise ConfigError(f"config must be a PropagateConfig, got {type(config).__name__}")
        for attr in ("network", "model_config", "normalization", "window_size", "erosion_width"):
            if not hasattr(model, attr):
                raise ConfigError(
                    f"model must be a LoadedModel (from rescunet_ij.io.checkpoint.load_model or "
                    f"model_from_network); got {type(model).__name__} without '{attr}'"
                )
        self.model = model
        self.config = config
        self.device = resolve_device(config.device)
        self.network = model.network.to(self.device).eval()
        self._channels_last = self.device.type == "cuda"
        if self._channels_last:
            # cuDNN's fastest convolutions want NHWC; a no-op for the weights' values.
            self.network = self.network.to(memory_format=torch.channels_last)
        self._amp_dtype = autocast_dtype(self.device, config.mixed_precision)
        self.window: tuple[int, int] = tuple(int(v) for v in model.window_size)  # type: ignore[assignment]
        self.input_size: tuple[int, int] = tuple(int(v) for v in model.model_config.input_size)  # type: ignore[assignment]
        self.in_channels = int(model.model_config.in_channels)
        self.erosion_width = int(
            config.erosion_width if config.erosion_width is not None else model.erosion_width
        )
        # Windows per forward pass; halved for good after an out-of-memory error.
        # Never more than the device's memory holds (fails at once, saying what to lower, when
        # not even one window fits: no endless out-of-memory retries on absurd model files).
        self.pass_size = fit_batch_size(
            model.model_config, self.device, int(config.batch_size), training=False
        )
        # How far an object is searched for around the global shift: the same radius training
        # used for its windows (data.samples), half the window side.
        self.motion_radius = search_radius(self.window, config.motion_radius)

    # ================================================================== state and prompts

    def init_state(self, planes: np.ndarray, first_frame: int = 0) -> PropagationState:
        """Start a session on a series of planes.

        Parameters
        ----------
        planes
            ``(N, Y, X)`` planes along t or z (a 2-D image is one frame); ``(N, C, Y, X)`` for a
            model trained on ``C > 1`` channels. A lazy
            :class:`~rescunet_ij.io.movie.PlaneSeries` (a big movie on disk) is not copied: its
            planes are read, converted and checked one at a time as propagation reaches them.
        first_frame
            The movie's frame index of ``planes[0]`` when the planes are a cut-out of a longer
            movie; every frame number in and out of the session is then the movie's own.

        Returns
        -------
        PropagationState
            An empty state holding a float32 copy of the planes (or the lazy series).

        Raises
        ------
        DataError
            If the array has the wrong number of dimensions or channels, is empty, or holds
            NaN/infinite values.
        """
        want = 3 if self.in_channels == 1 else 4
        if isinstance(planes, PlaneSeries):
            return self._lazy_state(planes, want, first_frame)
        arr = np.asarray(planes)
        if arr.ndim == want - 1:
            arr = arr[None]
        if arr.ndim != want:
            layout = (
                "(frames, Y, X)" if want == 3 else f"(frames, {self.in_channels} channels, Y, X)"
            )
            raise DataError(
                f"planes must be a {want}-D array {layout} (or one {want - 1}-D frame), "
                f"got shape {arr.shape}; select one z-plane and channel, or one time point, "
                "before propagating"
            )
        if want == 4 and arr.shape[1] != self.in_channels:
            raise DataError(
                f"the model was trained on {self.in_channels} channels but the planes have "
                f"{arr.shape[1]} (shape {arr.shape}); pass the same channels as in training"
            )
        if min(arr.shape) == 0:
            raise DataError(f"planes must not be empty, got shape {arr.shape}")
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
            raise DataError(f"planes must hold real numbers, got dtype {arr.dtype}")
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise DataError(
                "planes contain NaN or infinite values; replace them (e.g. numpy.nan_to_num) first"
            )
        return PropagationState(planes=arr, first_frame=self._first(first_frame))

    @staticmethod
    def _first(first_frame: int) -> int:
        first = frame_index(first_frame, "first_frame")
        if first is None or first < 0:
            raise DataError(f"first_frame must be a frame index >= 0; got {first_frame!r}")
        return first

    def _lazy_state(self, planes: PlaneSeries, want: int, first_frame: int) -> PropagationState:
        """A session over a lazy movie: planes are read (and checked) when propagation needs them.

        Only the prompt frame and the current frame are held (the series' cache); masks are the
        objects' crops, so memory does not grow with the movie's size.
        """
        shape = planes.shape
        if len(shape) != want or (want == 4 and shape[1] != self.in_channels) or min(shape) == 0:
            raise DataError(
                f"planes must be {want}-D with {self.in_channels} channel(s), got shape {shape}; "
                "select one z-plane and channel, or one time point, before propagating"
            )
        if planes.source_dtype.kind not in "biuf":
            raise DataError(f"planes must hold real numbers, got dtype {planes.source_dtype}")
        first = self._first(first_frame)

        def finite(i: int, plane: np.ndarray) -> None:
            if not np.isfinite(plane).all():
                raise DataError(
                    f"{frame_name(first + i)} contains NaN or infinite values; replace them "
                    "(e.g. numpy.nan_to_num) first"
                )

        planes.check = finite
        planes.cache = max(planes.cache, 2)  # the prompt frame and the current frame
        return PropagationState(planes=planes, first_frame=first)  # type: ignore[arg-type]

    def add_mask(
        self,
        state: PropagationState,
        frame: int,
        object_id: int,
        mask: np.ndarray | ObjectMask,
        *,
        name: str | None = None,
    ) -> None:
        """Give (or replace) one object's mask on one frame, as drawn by the user.

        Parameters
        ----------
        state
            The session.
        frame
            0-based frame index.
        object_id
            The object's id (>= 1).
        mask
            A boolean plane of the planes' ``(Y, X)`` shape, or an :class:`ObjectMask` crop.
        name
            Display name for the object (kept for its predictions).

        Raises
        ------
        DataError
            If the frame or id is invalid, or the mask has the wrong shape or is empty.
        """
        om = self._as_object_mask(state, frame, object_id, mask)
        poly = geometry.mask_to_polygon(om.mask, 0.0)
        outline = Outline(
            object_id, frame, poly + [om.x0, om.y0], name=name or state.names.get(object_id)
        )
        self._put_user(state, frame, object_id, om, outline, name)

    def add_outline(self, state: PropagationState, outline: Outline) -> None:
        """Give (or replace) one object's user-drawn outline on its frame (``outline.frame``).

        The polygon is rasterised with ImageJ's pixel-centre rule
        (:func:`rescunet_ij.geometry.polygon_to_mask`) and kept verbatim as the frame's outline.

        Raises
        ------
        DataError
            If the frame or id is invalid or the polygon covers no pixel of the plane.
        """
        if not isinstance(outline, Outline):
            raise DataError(
                f"add_outline needs an Outline, got {type(outline).__name__}; "
                "use add_mask for masks"
            )
        self._check_frame(state, outline.frame)
        full = geometry.polygon_to_mask(outline.polygon, state.plane_shape)
        om = self._as_object_mask(state, outline.frame, outline.object_id, full)
        self._put_user(state, outline.frame, outline.object_id, om, outline, outline.name)

    def set_frame(
        self,
        state: PropagationState,
        frame: int,
        outlines_or_masks: Iterable[Outline] | Mapping[int, np.ndarray | ObjectMask],
        *,
        direction: Direction = "forward",
    ) -> list[int]:
        """Replace a frame's prompts with the user's correction and forget what depends on it.

        Every mask on ``frame`` is replaced by the given outlines/masks (an object left out is
        removed from that frame). Every **predicted** mask after ``frame`` in ``direction``
        (``"forward"``: later frames, ``"reverse"``: earlier ones, ``"both"``) is dropped, so the
        next :meth:`propagate` recomputes it; masks the **user** drew on those frames are kept and
        become prompts again when propagation reaches them.

        Parameters
        ----------
        state
            The session.
        frame
            0-based frame index of the correction.
        outlines_or_masks
            :class:`Outline` objects (all on ``frame``), or a mapping ``object_id -> mask`` (boolean
            plane or :class:`ObjectMask`). Empty removes every object from the frame.
        direction
            Which predictions the correction invalidates.

        Returns
        -------
        list of int
            The frames whose predictions were dropped, sorted.

        Raises
        ------
        DataError
            If an outline is on another frame, an object appears twice, or a mask is invalid.
            Nothing is changed then.
        """
        if direction not in ("forward", "reverse", "both"):
            raise DataError(f"direction must be 'forward', 'reverse' or 'both', got {direction!r}")
        self._check_frame(state, frame)
        frame = int(frame)
        # Validate everything before touching the state: no half-applied correction on a bad item.
        new: dict[int, tuple[ObjectMask, Outline, str | None]] = {}
        if isinstance(outlines_or_masks, Mapping):
            for obj, m in outlines_or_masks.items():
                om = self._as_object_mask(state, frame, obj, m)
                poly = geometry.mask_to_polygon(om.mask, 0.0) + [om.x0, om.y0]
                new[int(obj)] = (
                    om,
                    Outline(int(obj), frame, poly, name=state.names.get(int(obj))),
                    None,
                )
        else:
            for o in outlines_or_masks:
                if not isinstance(o, Outline):
                    raise DataError(
                        f"set_frame takes Outline objects or a mapping object_id -> mask, got a "
                        f"{type(o).__name__} item"
                    )
                if o.frame != frame:
                    raise DataError(
                        f"the outline of object {o.object_id} is on {frame_name(o.frame)} but the "
                        f"correction is for {frame_name(frame)}; pass only that frame's outlines"
                    )
                if o.object_id in new:
                    raise DataError(
                        f"object {o.object_id} has two outlines on {frame_name(frame)}; give one "
                        "outline per object (merge the parts or use different ids)"
                    )
                full = geometry.polygon_to_mask(o.polygon, state.plane_shape)
                new[o.object_id] = (
                    self._as_object_mask(state, frame, o.object_id, full),
                    o,
                    o.name,
                )

        for obj in list(state.masks.get(frame, {})):
            state.remove(frame, obj)
        for obj, (om, outline, name) in new.items():
            self._put_user(state, frame, obj, om, outline, name)

        def affected(f: int) -> bool:
            return (direction in ("forward", "both") and f > frame) or (
                direction in ("reverse", "both") and f < frame
            )

        dropped = set()
        for f in list(state.masks):
            if not affected(f):
                continue
            for obj in list(state.masks[f]):
                if not state.is_user(f, obj):
                    state.remove(f, obj)
                    dropped.add(f)
        for obj, f in list(state.lost.items()):
            if f == frame or affected(f):
                del state.lost[obj]
        return sorted(dropped)

    def reset_state(self, state: PropagationState) -> None:
        """Forget every prediction and lost record; keep the planes and the user's outlines."""
        for f in list(state.masks):
            for obj in list(state.masks[f]):
                if not state.is_user(f, obj):
                    state.remove(f, obj)
        state.lost.clear()

    # ================================================================== propagation

    def propagate(
        self,
        state: PropagationState,
        start_frame: int | None = None,
        end_frame: int | None = None,
        *,
        reverse: bool = False,
        next_only: bool = False,
        object_ids: Iterable[int] | None = None,
    ) -> Iterator[FrameResult]:
        """Propagate the masks on ``start_frame`` frame by frame.

        Everything is checked when this is called; the work happens while the returned iterator
        is consumed, one frame per ``next()``. Stopping early (``break``, ``close()``) leaves the
        state consistent: every yielded frame is stored, nothing after it is touched.

        Parameters
        ----------
        state
            The session, with masks on ``start_frame``.
        start_frame
            The movie's 0-based frame holding the prompts; it is not recomputed and not yielded.
            ``None``: the first frame with masks of the selected objects (the last when
            ``reverse``).
        end_frame
            Last frame to predict (inclusive); ``None`` = the end of the movie (its start when
            ``reverse``).
        reverse
            Go backwards in time (or z).
        next_only
            Predict only the frame after ``start_frame`` (before it when ``reverse``).
        object_ids
            Propagate only these objects (default: all). Other objects' masks are not touched.

        Returns
        -------
        Iterator[FrameResult]
            One result per frame from ``start_frame +/- 1`` to ``end_frame``, objects sorted by id:
            the objects propagated into that frame (status OK, or LOST where one vanished) and the
            user's own masks met on the way (passed through with confidence and prompt IoU 1.0).
            A lost object is absent from later frames unless the user drew it there; a frame
            with no object left yields an empty result.

        Raises
        ------
        DataError
            If a frame is outside the movie, ``end_frame`` lies on the wrong side of
            ``start_frame``, or ``start_frame`` has no masks to start from
            (:func:`~rescunet_ij.propagate.frames.resolve_frame_range`, the one frame rule).
        StateError
            If ``state`` is not a session of this engine or an object id is unknown.
        """
        start, end, selected = self._preflight(
            state, start_frame, end_frame, reverse, next_only, object_ids
        )
        return self._run(state, start, end, -1 if reverse else 1, selected)

    def _preflight(
        self,
        state: PropagationState,
        start_frame: int | None,
        end_frame: int | None,
        reverse: bool,
        next_only: bool,
        object_ids: Iterable[int] | None,
    ) -> tuple[int, int, set[int]]:
        if not isinstance(state, PropagationState):
            raise StateError(
                "expected a PropagationState from Propagator.init_state, "
                f"got {type(state).__name__}"
            )
        selected = self._selected_objects(state, object_ids)
        seeded = [f for f, per_frame in state.masks.items() if selected & set(per_frame)]
        if not seeded:
            raise StateError(
                "no masks to start from"
                + ("" if object_ids is None else f" for objects {sorted(selected)}")
                + "; draw the objects first (add_outline/add_mask/set_frame)"
            )
        start, end = resolve_frame_range(
            state.frame_range,
            seeded,
            start_frame,
            end_frame,
            next_only=next_only,
            reverse=reverse,
        )
        return start, end, selected

    @staticmethod
    def _selected_objects(state: PropagationState, object_ids: Iterable[int] | None) -> set[int]:
        known = state.object_ids
        if object_ids is None:
            return set(known)
        try:
            selected = {int(o) for o in object_ids}
        except (TypeError, ValueError):
            raise StateError(f"object_ids must be integers, got {object_ids!r}") from None
        unknown = sorted(selected - set(known))
        if unknown:
            raise StateError(
                f"unknown object id(s) {unknown}; the state has objects {known or 'none'}; add "
                "their outlines first (add_outline/add_mask) or pick existing ids"
            )
        if not selected:
            raise StateError("object_ids is empty; pass None to propagate every object")
        return selected

    @torch.inference_mode()
    def _run(
        self, state: PropagationState, start: int, end: int, step: int, selected: set[int]
    ) -> Iterator[FrameResult]:
        active = selected & set(state.masks.get(start, {}))
        for target in range(start + step, end + step, step):
            prev = target - step
            users = {
                o for o in state.masks.get(target, {}) if o in selected and state.is_user(target, o)
            }
            prompts = state.masks.get(prev, {})
            # The state may be corrected between two frames: objects without a prompt drop out.
            to_predict = sorted(o for o in active if o not in users and o in prompts)
            jobs = [(o, prompts[o]) for o in to_predict]
            frame_shift, shifts = self._motion(state, prev, target, jobs)
            results: dict[int, ObjectResult] = {}
            for res in self._predict_frame(state, target, jobs, shifts):
                results[res.object_id] = res
            for o in users:
                results[o] = ObjectResult(
                    object_id=o,
                    status=ObjectStatus.OK,
                    mask=state.masks[target][o],
                    outline=state.outlines.get((target, o)),
                    confidence=1.0,
                    prompt_iou=1.0,
                )
            # Commit the whole frame before yielding: a consumer that stops here sees it stored.
            for o in to_predict:
                res = results[o]
                if res.status is not ObjectStatus.LOST:
                    assert res.mask is not None
                    state.put(
                        target,
                        o,
                        res.mask,
                        "predicted",
                        res.outline,
                        (res.confidence, res.prompt_iou),
                    )
                    if state.lost.get(o) == target:
                        del state.lost[o]
                else:
                    self._forget_after_loss(state, o, target, step)
                    active.discard(o)
            active |= users
            yield FrameResult(
                frame=target,
                objects=[results[o] for o in sorted(results)],
                shift=(frame_shift.dy, frame_shift.dx),
            )

    def _motion(
        self,
        state: PropagationState,
        prev: int,
        target: int,
        objects: list[tuple[int, ObjectMask]],
    ) -> tuple[Shift, dict[int, Shift]]:
        """The field's shift from ``prev`` to ``target`` and each object's (config.motion).

        The same rule (:mod:`rescunet_ij.data.motion`) moved the prompts of the training samples.
        """
        mode = self.config.motion
        if mode == "off" or not objects:
            return NO_SHIFT, {}
        before, after = state.plane(prev), state.plane(target)
        field = global_motion(before, after, mode, [p for _, p in objects])
        shifts = {
            o: object_motion(
                before, after, p, mode, start=field, window=self.window, radius=self.motion_radius
            )
            for o, p in objects
        }
        return field, shifts

    @staticmethod
    def _forget_after_loss(state: PropagationState, obj: int, frame: int, step: int) -> None:
        # The object's chain breaks here: its predictions from an earlier run up to its next user
        # mask (in this direction) no longer follow from anything, so they go.
        state.lost[obj] = frame
        f = frame
        while f in state.frame_range and not state.is_user(f, obj):
            state.remove(f, obj)
            f += step

    # ================================================================== one frame

    def _predict_frame(
        self,
        state: PropagationState,
        frame: int,
        prompts: list[tuple[int, ObjectMask]],
        shifts: Mapping[int, Shift] | None = None,
    ) -> list[ObjectResult]:
        if not prompts:
            return []
        shape = state.plane_shape
        plane = state.plane(frame)
        cfg = self.config
        jobs = []
        for obj, prompt in prompts:
            shift = (shifts or {}).get(obj, NO_SHIFT)
            moved = shift_mask(prompt, shift, shape)  # where the object should be now
            origins = plan_windows(
                moved, shape, self.window, context=cfg.context, overlap=cfg.tile_overlap
            )
            job = ObjectJob(obj, moved, origins, self.window, shape, shift)
            # Partly out of view before or after the move: its area is not comparable.
            job.cut = touches_border(prompt, shape) or touches_border(moved, shape)
            jobs.append(job)
        # Flat list of (job, origin): windows of all objects share the forward passes.
        flat = [(job, origin) for job in jobs for origin in job.origins]
        i = 0
        while i < len(flat):
            chunk = flat[i : i + self.pass_size]
            probs = self._forward_with_retry(plane, chunk)
            if probs is None:
                continue  # pass size was halved: retry this chunk
            for (job, origin), p in zip(chunk, probs):
                job.add(origin, p)
            i += len(chunk)
        drawn = {o: m for o, m in state.objects_at(frame).items() if state.is_user(frame, o)}
        share_pixels(jobs, drawn, self.config.threshold)
        return [self._finish(state, frame, job) for job in jobs]

    def _forward_with_retry(self, plane: np.ndarray, chunk: list) -> np.ndarray | None:
        try:
            return self._forward(plane, chunk)
        except Exception as exc:  # only out-of-memory is handled; everything else propagates
            if not is_out_of_memory(exc):
                raise
            size = len(chunk)
            where = self.device.type.upper() if self.device.type != "cpu" else "CPU"
            if size <= 1:
                raise ConfigError(
                    f"out of {where} memory with a single window of "
                    f"{self.window[0]}x{self.window[1]} pixels "
                    f"(network input {self.input_size[0]}x{self.input_size[1]}); "
                    "close other programs using the GPU, use a model with a smaller "
                    "input/subimage size or fewer base filters, or propagate on the CPU "
                    "(device='cpu')"
                ) from exc
        # Outside the except block, so the failed pass's tensors can be freed before retrying.
        self.pass_size = max(1, size // 2)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        warnings.warn(
            f"out of {where} memory with {size} windows per forward pass; retrying with "
            f"{self.pass_size} (set batch_size={self.pass_size} in the propagation settings "
            "to avoid this)",
            RuntimeWarning,
            stacklevel=2,
        )
        return None

    def _forward(self, plane: np.ndarray, chunk: list) -> np.ndarray:
        """Native-scale foreground probabilities ``(n, wh, ww)`` of (job, origin) windows."""
        origins = [origin for _, origin in chunk]
        if plane.ndim == 2:
            images = extract_windows(plane, origins, self.window)
        else:  # (C, Y, X): the same windows in every channel
            images = np.stack([extract_windows(ch, origins, self.window) for ch in plane], axis=1)
        masks = np.empty((len(chunk), *self.window), dtype=np.float32)
        # Cut the prompt windows from the crops (no full-plane mask per object); outside = 0.
        k = 0
        while k < len(chunk):
            job = chunk[k][0]
            j = k
            while j < len(chunk) and chunk[j][0] is job:
                j += 1
            p = job.prompt
            rel = [(y - p.y0, x - p.x0) for _, (y, x) in chunk[k:j]]
            masks[k:j] = extract_windows(p.mask, rel, self.window, pad_mode="constant")
            k = j
        x = to_network(
            images, self.input_size, normalization=self.model.normalization, device=self.device
        )
        m = to_network(masks, self.input_size, is_mask=True, device=self.device)
        if self._channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
            m = m.contiguous(memory_format=torch.channels_last)
        amp = (
            torch.autocast(device_type=self.device.type, dtype=self._amp_dtype)
            if self._amp_dtype is not None
            else contextlib.nullcontext()
        )
        with amp:
            logits = self.network(x, m)
        logits = logits.float()
        # softmax over two classes == sigmoid of the logit difference (one op, no (B,2,H,W) copy).
        prob = torch.sigmoid(logits[:, 1:2] - logits[:, 0:1])
        prob = from_network(prob, self.window)
        return prob[:, 0].to("cpu", torch.float32).numpy()

    def _finish(self, state: PropagationState, frame: int, job: ObjectJob) -> ObjectResult:
        """Threshold, clean up, check and outline one object's merged probabilities."""
        cfg = self.config
        prob = job.prob if job.prob is not None else job.probabilities()
        ref = job.prompt_on_canvas()
        fg = geometry.fill_holes(prob > cfg.threshold)
        fg = geometry.best_iou_component(fg, ref)
        if self.erosion_width > 0 and fg.any():
            fg = self._erode(fg, job, state.plane_shape)
            fg = geometry.best_iou_component(fg, ref)  # erosion may split a thin neck
        shift = (job.shift.dy, job.shift.dx)
        area = int(np.count_nonzero(fg))
        if area < cfg.min_area:
            why = f"the network found {area} pixel(s), fewer than min_area={cfg.min_area}"
            return self._lost(job, frame, why)
        confidence = float(prob[fg].mean())
        reason = self._sanity(fg, ref, confidence, at_edge(job, state.plane_shape), job.cut)
        if reason is not None and not cfg.keep_going:
            return self._lost(job, frame, reason)
        prompt_iou = float(geometry.iou(fg, ref))
        om = ObjectMask.from_full(fg)
        om = ObjectMask(job.y0 + om.y0, job.x0 + om.x0, om.mask)
        polygon = geometry.mask_to_polygon(om.mask, cfg.simplify_tolerance) + [om.x0, om.y0]
        outline = Outline(
            object_id=job.object_id,
            frame=frame,
            polygon=polygon,
            z=0,
            name=state.names.get(job.object_id),
            confidence=confidence,
            prompt_iou=prompt_iou,
        )
        status = ObjectStatus.OK if reason is None else ObjectStatus.DOUBTFUL
        return ObjectResult(
            job.object_id, status, om, outline, confidence, prompt_iou, shift, reason
        )

    def _sanity(
        self,
        fg: np.ndarray,
        ref: np.ndarray,
        confidence: float,
        edge: np.ndarray,
        cut: bool = False,
    ) -> str | None:
        """Why a prediction has probably left its object, or ``None`` when it looks right.

        ``edge`` marks the canvas pixels on the image border: an object cut by the border may
        grow or shrink as it moves in or out of view, so its area is not judged.
        """
        cfg = self.config
        ref_area = int(np.count_nonzero(ref))
        if ref_area == 0:
            return None  # the prompt left the canvas (the image): nothing to compare with
        overlap = geometry.iou(fg, ref)
        if overlap < cfg.lost_prompt_iou:
            return (
                f"it left its object: IoU {overlap:.2f} with the previous outline moved by the "
                "estimated motion"
            )
        if confidence < cfg.lost_confidence:
            return f"very low confidence {confidence:.2f} (below {cfg.lost_confidence:g})"
        ratio = int(np.count_nonzero(fg)) / ref_area
        cut_by_border = cut or bool(np.any(edge & (fg | ref)))
        if not cut_by_border and (ratio > cfg.max_area_change or ratio < 1.0 / cfg.max_area_change):
            return f"its area changed {ratio:.2g}-fold from the previous frame"
        return None

    def _lost(self, job: ObjectJob, frame: int, why: str) -> ObjectResult:
        self._warn_lost(job.object_id, frame, why)
        shift = (job.shift.dy, job.shift.dx)
        return ObjectResult(job.object_id, ObjectStatus.LOST, None, None, 0.0, 0.0, shift, why)

    @staticmethod
    def _warn_lost(object_id: int, frame: int, why: str) -> None:
        warnings.warn(
            f"object {object_id} lost at frame {frame + 1} (1-based; index {frame}): {why}; "
            "its propagation stops here; correct it and re-propagate (or keep going with "
            "keep_going=True / --keep-going, marking such frames doubtful)",
            ObjectLostWarning,
            stacklevel=6,
        )

    def _erode(self, fg: np.ndarray, job: ObjectJob, plane_shape: tuple[int, int]) -> np.ndarray:
        # geometry.erode treats beyond-the-array as object (right at the image border); the
        # canvas edges inside the image are not borders, so pad those sides with background.
        H, W = plane_shape
        h, w = fg.shape
        m = self.erosion_width + 1
        pads = (
            (0 if job.y0 == 0 else m, 0 if job.y0 + h == H else m),
            (0 if job.x0 == 0 else m, 0 if job.x0 + w == W else m),
        )
        out = geometry.erode(np.pad(fg, pads), self.erosion_width)
        return out[pads[0][0] : pads[0][0] + h, pads[1][0] : pads[1][0] + w]

    # ================================================================== helpers

    @staticmethod
    def _check_frame(state: PropagationState, frame: int) -> None:
        if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)):
            raise DataError(f"frame must be an integer index, got {frame!r}")
        frames = state.frame_range
        if int(frame) not in frames:
            raise DataError(
                f"frame index {frame} is outside the movie (indices {frames.start}.."
                f"{frames.stop - 1}, 0-based; frames {frames.start + 1}..{frames.stop} as ImageJ "
                "numbers them)"
            )

    def _as_object_mask(
        self, state: PropagationState, frame: int, object_id: int, mask: np.ndarray | ObjectMask
    ) -> ObjectMask:
        self._check_frame(state, frame)
        if (
            isinstance(object_id, bool)
            or not isinstance(object_id, (int, np.integer))
            or object_id < 1
        ):
            raise DataError(f"object ids must be integers >= 1, got {object_id!r}")
        shape = state.plane_shape
        if isinstance(mask, ObjectMask):
            full = mask.to_full(shape)  # also clips a crop reaching outside the plane
        else:
            full = np.asarray(mask)
            if full.shape != shape:
                raise DataError(
                    f"the mask of object {object_id} has shape {full.shape} but the planes are "
                    f"{shape}; pass a full-plane mask or an ObjectMask crop"
                )
            full = full.astype(bool, copy=False)
        om = ObjectMask.from_full(full)
        if om.area == 0:
            raise DataError(
                f"the mask of object {object_id} on {frame_name(int(frame))} is empty (or entirely "
                "outside the image); draw the object inside the image"
            )
        return om

    @staticmethod
    def _put_user(
        state: PropagationState,
        frame: int,
        obj: int,
        om: ObjectMask,
        outline: Outline,
        name: str | None,
    ) -> None:
        obj = int(obj)
        if name:
            state.names[obj] = name
        state.put(int(frame), obj, om, "user", outline, None)
        if state.lost.get(obj) == int(frame):
            del state.lost[obj]
