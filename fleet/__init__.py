"""baleine: daemonless containers on a fleet of Linux hosts.

fleet.node is the helper that runs on each host (standard library only);
the rest of fleet runs on the control machine.
"""
