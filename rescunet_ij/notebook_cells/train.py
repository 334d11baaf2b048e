"""Train. Each epoch prints its losses; the best model (lowest validation loss) is kept.

Press the stop button once to end training early and keep the best model so far.
"""

import importlib.util
import signal
import time
import warnings

# Names this cell takes from the cells above (a notebook's variables live in its `__main__`).
from __main__ import MODEL_FILE, TRAINING_SET, config
from rescunet_ij import api

tqdm = None
if importlib.util.find_spec("ipywidgets") and importlib.util.find_spec("tqdm"):
    with warnings.catch_warnings():  # a live progress bar (Colab has both packages)
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm


def fmt(value, digits=4):
    """A number for the progress line ("-" when there is none)."""
    return "-" if value is None else f"{value:.{digits}f}"


stop_requested = False


def request_stop(signum, frame):
    """The stop button: the first press ends training after this batch, a second one at once."""
    global stop_requested
    if stop_requested:
        raise KeyboardInterrupt
    stop_requested = True
    print("stopping after this batch; the best model so far is kept (press stop again to abort)")


def on_epoch_end(stats):
    """Print one line per epoch (and move the progress bar)."""
    line = (
        f"epoch {stats['epoch']}/{stats.get('epochs', config.epochs)}: "
        f"loss {fmt(stats.get('train_loss'))}, validation loss {fmt(stats.get('val_loss'))}, "
        f"validation IoU {fmt(stats.get('val_iou'), 3)} ({time.perf_counter() - started:.0f} s)"
    )
    if bar is not None:
        bar.update(1)
        bar.set_postfix(loss=fmt(stats.get("train_loss")), val_iou=fmt(stats.get("val_iou"), 3))
    print(line, flush=True)


try:
    previous_handler = signal.signal(signal.SIGINT, request_stop)
except ValueError:  # not the main thread: the stop button interrupts at once
    previous_handler = None
started = time.perf_counter()
bar = tqdm(total=config.epochs, desc="training", unit="epoch") if tqdm is not None else None
callbacks = api.TrainCallbacks(on_epoch_end=on_epoch_end, should_stop=lambda: stop_requested)
try:
    # The window cut around each object is the training set's unless subimage_size is set.
    result = api.train(TRAINING_SET, MODEL_FILE, config=config, callbacks=callbacks, overwrite=True)
finally:
    if bar is not None:
        bar.close()
    if previous_handler is not None:
        signal.signal(signal.SIGINT, previous_handler)
if result.model_path is None:
    raise RuntimeError(
        "training stopped before the first epoch ended: no model was saved; run this cell again"
    )
how = (
    "stopped early"
    if result.stopped_early
    else ("stopped by you" if result.cancelled else "finished")
)
window, size = result.model.window_size, result.model.model_config.input_size
print(
    f"training {how} after {len(result.history)} epochs in {time.perf_counter() - started:.0f} s; "
    f"best epoch {result.best_epoch}; subimage size {window[0]} x {window[1]} "
    f"(network input {size[0]} x {size[1]})"
)
