"""Ray job entry point for training: `ray job submit --working-dir . -- python jobs/train.py --config ...`.

Takes the same flags as `sentiment-ray train`; all logic lives in sentiment_ray.
"""

import sys

from sentiment_ray.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
