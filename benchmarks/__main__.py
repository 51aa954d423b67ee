"""``python -m benchmarks [--quick]``: run every benchmark, write docs/benchmarks.md."""

import sys

from benchmarks.run import main

sys.exit(main(sys.argv[1:]))
