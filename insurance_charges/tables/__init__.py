"""Tabular input read once for every way in that takes files or bodies of rows.

CSV, JSON lines and Parquet become columns (or values), the number of the line each row came
from, and the lines that are not rows, worded. The file scorer (``scoring``), SageMaker's
``/invocations`` bodies (``platforms.sagemaker``) and the capture files (``outcomes``) all read
through here, so a CSV option, a blank line's meaning or a JSON line's value is decided in one
place. Below the adapters: it imports the core and numpy, pyarrow and orjson, nothing of the
project above them.

Modules: ``lines`` (line ends, blank lines, chunks of whole lines, a stream's whole lines a
block at a time with the overlong ones left out), ``csv_text`` (Arrow's CSV parse as text
cells, and the careful parse that knows where each row starts), ``json_lines`` (each line's
value exactly as the API's strict parser gives it, read in bulk), ``parquet`` (record batches,
rows numbered from 1), ``columns`` (the column-at-a-time check, exact to the core).
"""
