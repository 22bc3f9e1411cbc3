"""`python -m rgbt_tracking_ros.cli ...`: `rgbt-track` without the console script (the demo
starts the node this way, with the interpreter it runs in)."""
import sys

from . import main

sys.exit(main())
