"""`python3 -m fleet.node` and the zipapp's entry point."""

import sys

from fleet.node.cli import main

sys.exit(main())
