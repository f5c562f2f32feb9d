"""``python -m insurance_charges.container``: the image's command (PID 1)."""

from ..startup.interrupts import quiet_interrupts

quiet_interrupts()  # before anything else is imported: a Ctrl-C from here on ends quietly

import sys  # noqa: E402

from .launcher import main  # noqa: E402

sys.exit(main())
