"""hcs_sandbox.cli."""
