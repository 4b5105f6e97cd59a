"""Ray job entry point for sweeps: `ray job submit --working-dir . -- python jobs/tune.py --config ...`.

Takes the same flags as `sentiment-ray tune`; all logic lives in sentiment_ray.
"""

import sys

from sentiment_ray.cli import main

if __name__ == "__main__":
    sys.exit(main(["tune", *sys.argv[1:]]))
