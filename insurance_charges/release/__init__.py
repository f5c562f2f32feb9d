"""Release once: build the image from a commit, check it, push it, write the EB bundle.

``python -m insurance_charges.release --registry HOST[:PORT]/REPO`` or
``--ecr-repository NAME --region REGION`` (``make release``;
docs/deploy/elastic-beanstalk.md#release-once-deploy-the-same-image). Never imported by the
service: it drives git, the docker CLI and boto3.
"""
