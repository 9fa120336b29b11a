"""baleine's node helper: containers on one host, standard library only.

Runs as `python3 -I -S` (zipapp or installed); never imports the rest of fleet.
"""

VERSION = "0.1.0"
