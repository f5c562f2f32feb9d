"""What each AWS platform asks of the image beyond the service itself.

Elastic Beanstalk and ECS run the image as it is; SageMaker starts it with ``serve`` and
expects its own inference-container contract (``platforms.sagemaker``), and its endpoints and
Batch Transform jobs are created with ``python -m insurance_charges.platforms.sagemaker``.
"""
