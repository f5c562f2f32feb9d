"""SageMaker: real-time endpoints and Batch Transform jobs on the released image."""
