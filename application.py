"""gunicorn's and Elastic Beanstalk's entry point."""

from insurance_charges.startup.interrupts import quiet_interrupts

# gunicorn run by hand loads the model here, before its own signal handling starts: Ctrl-C
# meanwhile ends it without a traceback (`make run` and the image do this from their first line).
quiet_interrupts()
from insurance_charges.web import create_app  # noqa: E402

application = create_app()
