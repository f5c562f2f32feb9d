"""``python -m insurance_charges.startup``: how `make run` and the image start gunicorn."""

from .interrupts import quiet_interrupts

quiet_interrupts()  # before anything else is imported: a Ctrl-C from here on ends quietly

import sys  # noqa: E402

from .server import main  # noqa: E402

sys.exit(main())
