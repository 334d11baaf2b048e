"""``python -m rescunet_ij`` = the ``rescunet-ij`` command."""

import sys

from .cli import main

sys.exit(main())
