"""Score a file: ``python -m insurance_charges.scoring INPUT -o OUTPUT``.

Reads CSV, JSON lines or Parquet (a local path, ``s3://bucket/key`` or ``-``) in chunks, puts
every row through the estimator core the JSON API uses (``core.validation``,
``core.estimates.estimate_valid``), and writes the input columns plus ``estimate``,
``likely_lower``, ``likely_upper`` and ``warnings``, in input order. Rows the core refuses go to
a rejects file with their line numbers. Output appears only when the run is complete.

Modules: ``cli`` (arguments, the run, exit codes), ``formats`` (format names and output
columns), ``storage`` (local, S3 and standard streams; atomic outputs), ``reading`` (the input
cut into chunks; ``tables`` reads each), ``chunk_scorer`` (one chunk scored, in a worker
process: ``table_chunks`` for CSV and Parquet rows, ``json_chunks`` for JSON lines, with
``validating``, ``row_estimates``, ``problems`` and ``chunk_output``; ``scored``: its plan and
result), ``writing`` (output and rejects files), ``parallel`` (an ordered, bounded process
pool) and ``reporting`` (progress, logs, summary).
"""
