"""hcs_sandbox.sim."""
