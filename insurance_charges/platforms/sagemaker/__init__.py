"""SageMaker's inference-container contract, without a web framework.

SageMaker starts the image as ``docker run IMAGE serve``, extracts the model archive into
``/opt/ml/model``, probes ``GET /ping`` and sends ``POST /invocations``; Batch Transform also
asks ``GET /execution-parameters`` (docs/deploy/sagemaker.md, which cites AWS's pages).
Modules: ``csv_body`` and ``jsonlines_body`` read bodies into records through ``tables``, each
with its line number (``decoding``: what they give and how they refuse), ``body_estimates``
puts them through the core in chunks, ``encoding`` writes the answers. The HTTP side is
``web/sagemaker.py``; the ``serve`` start is ``container/``. ``launch`` (``__main__``) creates
endpoints and Batch Transform jobs through boto3; ``archive`` writes the ``model.tar.gz``
SageMaker extracts.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import UserError
from ...settings import MAX_PAYLOAD_MB_LIMIT

MODEL_DIR = Path("/opt/ml/model")  # where SageMaker extracts ModelDataUrl's model.tar.gz
PIPELINE_SUFFIX = ".pkl"  # the archive holds the pipeline with its .card.json and .sig.json
# Batch Transform refuses a job whose MaxConcurrentTransforms x MaxPayloadInMB exceeds 100 MB.
CONCURRENT_PAYLOAD_MB = MAX_PAYLOAD_MB_LIMIT


class ModelDirError(UserError, ValueError):
    """/opt/ml/model holds something other than one model; the message says how to fix it."""


def model_in(directory: Path = MODEL_DIR) -> Path | None:
    """The pipeline SageMaker extracted into ``directory``, or None when it put none there.

    The archive's top level holds one ``.pkl`` with its card and signature beside it, as
    ``model/`` does in the repository. Anything else there is refused, naming what was found,
    rather than silently serving the image's own model instead of the one the user chose.
    """
    try:
        entries = sorted(directory.iterdir())
    except FileNotFoundError:
        return None  # no ModelDataUrl: SageMaker made no model directory
    except OSError as exc:
        raise ModelDirError(
            f"{directory} cannot be read ({exc.strerror}); make the files in "
            "model.tar.gz readable by every user (the image runs as 10001)"
        ) from None
    if not entries:
        return None
    pipelines = [p for p in entries if p.suffix == PIPELINE_SUFFIX]
    if len(pipelines) == 1:
        return pipelines[0]
    found = ", ".join(p.name for p in entries[:10]) + (", ..." if len(entries) > 10 else "")
    if pipelines:
        raise ModelDirError(
            f"{directory} holds {len(pipelines)} pipelines ({found}); put one "
            ".pkl with its .card.json and .sig.json in model.tar.gz"
        )
    nested = sorted(directory.glob(f"*/*{PIPELINE_SUFFIX}"))
    hint = (
        (
            f"; {nested[0].relative_to(directory)} is one folder down: archive the files "
            "themselves (tar -czf model.tar.gz -C model .)"
        )
        if nested
        else ""
    )
    raise ModelDirError(
        f"{directory} holds no {PIPELINE_SUFFIX} pipeline at its top level "
        f"(found: {found}){hint}; model.tar.gz must hold the pipeline with its "
        ".card.json and .sig.json"
    )


def execution_parameters(workers: int, max_payload_mb: int) -> dict:
    """What ``GET /execution-parameters`` advises a Batch Transform job to use.

    Every request is CPU-bound in one gunicorn worker, so one request per worker keeps every
    core busy and none queued (more would only wait in nginx); capped so that concurrency x
    payload stays within Batch Transform's 100 MB. The payload is the largest the container
    accepts (6 MB unless SAGEMAKER_MAX_PAYLOAD_IN_MB says otherwise): fewer, fuller requests.
    """
    return {
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": max_payload_mb,
        "MaxConcurrentTransforms": max(1, min(workers, CONCURRENT_PAYLOAD_MB // max_payload_mb)),
    }
