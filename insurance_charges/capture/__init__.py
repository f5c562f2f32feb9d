"""Capture: every estimate kept as one JSON line, written off the request path (no Flask here).

``destinations.py`` says where files go (a directory, or S3); ``lines.py`` turns an answer's
estimates into capture lines, proven equal to ``core.captures.capture_line``; ``writer.py``
buffers them per process and ships one file per hour partition every minute and at exit.
"""
