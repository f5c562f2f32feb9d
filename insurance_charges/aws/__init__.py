"""Everything the project asks of AWS through boto3, in one place (it imports nothing from the
project, and importing it imports neither boto3 nor Flask).

``clients`` makes every boto3 client (botocore's ``standard`` retry mode, timeouts, retries
logged); ``uri`` parses ``s3://bucket/key`` strictly; ``errors`` turns any botocore failure into
the one line to show; ``objects`` reads S3 objects as streams or seekable files; ``messages``
checks and publishes to the EB worker's results queue or topic.
"""
