"""Write examples/: reviews of the offline corpus's test split (seed 42), which `make train` never trains on.

    .venv/bin/python scripts/make_examples.py

reviews.csv: 300 labelled reviews (id, text, label: 1 positive, 0 negative), for `evaluate`, `train --data` and
`calibrate`. reviews.tsv: 200 other reviews without labels (id, text), for `score` and `predict --input`.
"""

from pathlib import Path

from sentiment_ray.data.corpus import load_offline_splits

EXAMPLES = Path(__file__).parents[1] / "examples"


def main() -> None:
    splits, _ = load_offline_splits(seed=42)
    test = splits["test"][["id", "text", "label"]]  # already shuffled with the seed, stratified by label
    EXAMPLES.mkdir(exist_ok=True)
    test.iloc[:300].to_csv(EXAMPLES / "reviews.csv", index=False)
    test.iloc[300:500][["id", "text"]].to_csv(EXAMPLES / "reviews.tsv", sep="\t", index=False)


if __name__ == "__main__":
    main()
