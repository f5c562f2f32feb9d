"""What each AWS platform asks of the image beyond the service itself (no Flask here).

Elastic Beanstalk and ECS run the image as it is; SageMaker starts it with ``serve`` and
expects its own inference-container contract (``platforms.sagemaker``).
"""
