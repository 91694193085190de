"""hcs_sandbox.sandbox."""
