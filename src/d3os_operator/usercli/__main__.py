"""``python -m d3os_operator.usercli``: the ``d3os`` command without its console script."""

import sys

from . import main

sys.exit(main())
