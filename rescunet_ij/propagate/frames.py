"""The one rule for which frames a propagation visits.

Frames are the movie's own 0-based indices everywhere in Python (a movie cut to frames 10..19
still calls them 10..19); they become 1-based only in messages, files and ImageJ. The engine's
preflight, the Python API and the ImageJ bridge (which copies only the frames it needs out of
ImageJ) all ask :func:`resolve_frame_range`, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from ..errors import ConfigError, DataError

__all__ = ["describe_frames", "frame_index", "frame_name", "resolve_frame_range"]


def frame_name(frame: int) -> str:
    """``frame 5 (1-based; index 4)``: how messages name a 0-based frame for every reader."""
    return f"frame {frame + 1} (1-based; index {frame})"


def describe_frames(frames: Collection[int], limit: int = 10) -> str:
    """``1, 2, 5...`` (1-based) for a message listing frames."""
    ordered = sorted(frames)
    text = ", ".join(str(f + 1) for f in ordered[:limit])
    return text + ("..." if len(ordered) > limit else "")


def frame_index(value: object, what: str) -> int | None:
    """Check a frame argument from Python: ``None`` or a whole number (not a bool or a string)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ConfigError(
            f"{what} must be a whole number (a 0-based frame index in Python, 1-based on the "
            f"command line); got {value!r} of type {type(value).__name__}"
        )
    return int(value)


def resolve_frame_range(
    frames: range,
    seeded: Collection[int],
    start: int | None = None,
    end: int | None = None,
    *,
    next_only: bool = False,
    reverse: bool = False,
) -> tuple[int, int]:
    """The seed frame and the last frame to predict, checked against the movie.

    Parameters
    ----------
    frames
        The movie's frame indices (``range(first, first + n)``; a cut-out keeps its own numbers).
    seeded
        Frames that hold outlines to start from (the default start: the first of them, the last
        when ``reverse``).
    start, end
        0-based seed frame and last frame to predict (inclusive); ``None`` for the defaults
        (``end``: the end of the movie, its start when ``reverse``).
    next_only
        Predict only the frame after ``start`` (before it when ``reverse``); an ``end`` given
        with it must be that frame.
    reverse
        Propagate backwards.

    Returns
    -------
    tuple of int
        ``(start, end)`` in the movie's frame indices; ``end != start``.

    Raises
    ------
    DataError
        A frame outside the movie, no seeded frame, nothing to predict in that direction, or an
        end on the wrong side of the start. Messages give 1-based frames and say what to pass.
    ConfigError
        ``next_only`` with another ``end``, or a frame that is not a whole number.
    """
    start, end = frame_index(start, "start_frame"), frame_index(end, "end_frame")
    first, last = frames.start, frames.stop - 1
    span = f"frames {first + 1}..{last + 1}"
    if start is None:
        inside = [f for f in seeded if f in frames]
        if not inside:
            raise DataError("no outlines to start from: outline the objects on a frame first")
        start = max(inside) if reverse else min(inside)
    if start not in frames:
        raise DataError(
            f"the start frame {start + 1} is outside the movie ({span}); pick one of those"
        )
    if start not in seeded:
        raise DataError(
            f"no outlines on the start frame {start + 1} (outlines exist on frames "
            f"{describe_frames(seeded) or 'none'}); start from one of those (CLI: --first-frame)"
        )
    step = -1 if reverse else 1
    direction = "backwards" if reverse else "forwards"
    if next_only:
        if end is not None and end != start + step:
            raise ConfigError(
                "give either a last frame or next-frame-only, not both (CLI: --last-frame or "
                "--next-frame-only; Python: end_frame= or next_only=True)"
            )
        end = start + step
    elif end is None:
        end = first if reverse else last
    elif end == start:
        raise DataError(
            f"the last frame {end + 1} is the start frame: nothing to predict; pass a last frame "
            f"{'before' if reverse else 'after'} it"
        )
    if end == start or (next_only and end not in frames):
        edge = "first" if reverse else "last"
        raise DataError(
            f"nothing to propagate {direction}: frame {start + 1} is the {edge} frame "
            f"({span}); propagate the other way (CLI: {'leave out ' if reverse else ''}--reverse; "
            f"Python: reverse={not reverse})"
        )
    if end not in frames:
        raise DataError(
            f"the last frame {end + 1} is outside the movie ({span}); pick one of those"
        )
    if (end < start) != reverse:
        raise DataError(
            f"the last frame {end + 1} is {'before' if not reverse else 'after'} the start frame "
            f"{start + 1} but propagation goes {direction}; to go "
            f"{'backwards' if not reverse else 'forwards'} "
            f"{'add' if not reverse else 'leave out'} --reverse (Python: reverse={not reverse})"
        )
    return start, end
