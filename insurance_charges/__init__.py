"""insurance-charges: predict yearly medical insurance charges from six facts.

Layers, top-down (docs/architecture.md#layers): entry points (``startup``, ``container``, each
package's ``__main__``, ``settings``: every environment variable) above the adapters (``web``,
``scoring``, ``platforms``) above the operations (``registry``, ``release``, ``training``) above
``monitoring``, ``serving`` (loading and verifying a model; the compiled fast path) and, at the
bottom, ``core`` (schema, validation, estimates: numpy and pandas only). ``aws`` (every boto3
client, S3 URI and AWS error) imports nothing of the project; the operations and adapters use it.
"""
