"""`python3 -m fleet.node` and the zipapp's entry point."""

from fleet.node.cli import exit_now, main

exit_now(main())
