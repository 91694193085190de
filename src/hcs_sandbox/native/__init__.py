"""hcs_sandbox.native."""
