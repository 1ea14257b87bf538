"""`python3 -m pgbench` (bench/ on PYTHONPATH; bench/run.sh does that): the comparative benchmark."""
import sys

from .cli import main
from .procs import log

try:
    main()
except KeyboardInterrupt:
    log("interrupted")
    sys.exit(130)
