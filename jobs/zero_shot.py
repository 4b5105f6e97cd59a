"""Ray job entry point: `ray job submit --working-dir . -- python jobs/zero_shot.py ...`.

Takes the flags of `sentiment-ray zero-shot`; all logic lives in sentiment_ray.
"""

import sys

from sentiment_ray.cli import main

if __name__ == "__main__":
    sys.exit(main(["zero-shot", *sys.argv[1:]]))
