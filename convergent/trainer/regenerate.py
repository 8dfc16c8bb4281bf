"""``convergent regenerate TAG``: rebuild an adapter from the log and compare it bit for bit.

The tag's metadata names the commit the dataset was built at, the proposal, the
resolved training spec (backend, seed, hyper-parameters) and the hashes. The dataset
is rebuilt from the log at that commit with the config in force there, the adapter is
retrained with the same spec, and both hashes are compared. On CPU two runs are
bitwise identical; a GPU-trained adapter regenerated on another device may not be.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from convergent.adapters import RegistryError, adapter_tags, tag_metadata
from convergent.gates.context import config_from
from convergent.gitops import open_repo, read_path_at
from convergent.history import records_at
from convergent.layout import CONFIG_FILE
from convergent.records import Record
from convergent.trainer.bases import resolve_base_model
from convergent.trainer.dataset import build_dataset
from convergent.trainer.spec import TrainSpec
from convergent.trainer.train import run_training


def regenerate(root: Path, tag_name: str) -> dict[str, Any]:
    root = Path(root).resolve()
    repo = open_repo(root)
    tags = {t.name: t for t in adapter_tags(repo)}
    if tag_name not in tags:
        raise RegistryError(f"no adapter tag {tag_name!r}; known: {', '.join(tags) or 'none'}")
    meta = tag_metadata(tags[tag_name])
    at = str(meta["dataset_commit"])
    config = config_from(read_path_at(repo, at, CONFIG_FILE), root)
    history = records_at(repo, at)
    proposal = next((r for r in history if r.get("id") == meta["proposal"]), None)
    if proposal is None:
        raise RegistryError(f"proposal {meta['proposal']} is not in the log at {at[:12]}")
    wanted = Record(proposal).evidence.get("manifest", {}).get("experiences", [])
    with tempfile.TemporaryDirectory(prefix="convergent-regenerate-") as scratch:
        work = Path(scratch)
        dataset = build_dataset(root, config, history, wanted, work / "data")
        spec = TrainSpec.from_dict(dict(meta["spec"], dataset=str(dataset.path),
                                        output_dir=str(work / "run"),
                                        base_model=resolve_base_model(config)))
        report = run_training(spec)
    rebuilt = f"sha256:{report['adapter_sha256']}"
    differences = []
    if dataset.manifest_sha256 != meta["manifest_sha256"]:
        differences.append(f"dataset manifest {dataset.manifest_sha256[:16]} != recorded "
                           f"{str(meta['manifest_sha256'])[:16]}")
    if report.get("base_sha256_before") != meta.get("base_sha256"):
        differences.append("the base model's weights differ from the recorded base")
    if rebuilt != meta["adapter"]:
        differences.append(f"adapter {rebuilt[:23]} != recorded {str(meta['adapter'])[:23]}")
    return {"tag": tag_name, "identical": not differences, "adapter": rebuilt,
            "recorded": meta["adapter"], "backend": spec.backend, "differences": differences}
