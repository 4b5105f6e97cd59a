"""An `s3://` (any URI) run's last step: the staged run folder uploaded to `--output-dir`, the staged copy deleted.

The driver writes a URI run in a local staging folder (`driver.run_dir`); Ray Train's checkpoints go to the URI
itself. The upload puts the model folder's sentiment_meta.json last, so that a loader never accepts a folder the
upload left half-written (docs/guide/cluster.md).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from sentiment_ray.location import Location
from sentiment_ray.models.folder import META_FILE
from sentiment_ray.storage import StorageError, upload_file, upload_folder

log = logging.getLogger(__name__)


# Scratch the workers wrote on their own disks, and events rank 0 uploads itself: not part of the upload.
NOT_UPLOADED = ("hf_checkpoints", "tensorboard", "ray")


def publish_run(staged: Path, output: Location) -> None:
    """Upload the staged run folder to `output` (the run's `output_dir`, a URI), then delete the staged copy but its
    `logs/` (the command's log is still being written there).

    The model folder's sentiment_meta.json goes last, so an upload that breaks off (the store stopped, the
    network gone) leaves no model folder that a loader accepts. The staged run is then kept and named in the error.
    """
    try:
        for entry in sorted(staged.iterdir()):
            if entry.name in NOT_UPLOADED:
                continue
            if entry.is_dir():
                upload_folder(entry, output.join(entry.name).text, last=META_FILE if entry.name == "model" else None)
            else:
                upload_file(entry, output.join(entry.name).text)
    except StorageError as err:
        kept = f"the trained run is kept in {staged}"
        raise StorageError(f"{err}; {kept}; a model folder whose upload broke off has no {META_FILE}") from None
    log.info("run folder uploaded to %s", output)
    for entry in staged.iterdir():
        if entry.is_dir() and entry.name != "logs":
            shutil.rmtree(entry)
        elif entry.is_file():
            entry.unlink()
