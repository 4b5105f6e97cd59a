"""Ray job entry point: `ray job submit --working-dir . -- python jobs/evaluate.py ...`.

Takes the flags of `sentiment-ray evaluate`; all logic lives in sentiment_ray.
"""

import sys

from sentiment_ray.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
