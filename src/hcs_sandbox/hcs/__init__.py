"""hcs_sandbox.hcs."""
