"""Invoke entry point: `invoke --list`. The tasks live in fleet/tasks/."""

from fleet.tasks import namespace as ns  # noqa: F401  (invoke looks for `ns`)
