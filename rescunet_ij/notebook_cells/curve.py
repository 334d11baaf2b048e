"""The training curve (loss and validation IoU per epoch), as written next to the model file."""

from pathlib import Path

from IPython.display import Image, display

# Names this cell takes from the cells above (a notebook's variables live in its `__main__`).
from __main__ import result

if result.history_png is not None and Path(result.history_png).is_file():
    display(Image(filename=str(result.history_png)))
    print(f"curve: {result.history_png}; numbers: {result.history_csv}")
else:
    print("no training-curve picture was written")
