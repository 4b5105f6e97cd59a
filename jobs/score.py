"""Ray job entry point for batch scoring: `ray job submit --working-dir . -- python jobs/score.py --model-path ...`.

Takes the same flags as `sentiment-ray score`; all logic lives in sentiment_ray.
"""

import sys

from sentiment_ray.cli import main

if __name__ == "__main__":
    sys.exit(main(["score", *sys.argv[1:]]))
