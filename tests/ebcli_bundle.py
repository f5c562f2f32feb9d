"""Run inside the EB CLI's own virtual environment: zip the current project as `eb deploy` does.

Usage (from the project directory): .venv-ebcli/bin/python tests/ebcli_bundle.py LABEL
Prints the path of the zip. It calls the function `eb deploy` itself calls to make the
application version (ebcli.operations.commonops._zip_up_project), so .ebignore is read
and applied by the EB CLI's code, not by a re-implementation.
"""

import sys

from ebcli.objects.sourcecontrol import SourceControl
from ebcli.operations import commonops

_, path = commonops._zip_up_project(sys.argv[1], SourceControl.get_source_control(), staged=False)
sys.stdout.write(path + "\n")
