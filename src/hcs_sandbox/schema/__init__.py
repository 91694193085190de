"""hcs_sandbox.schema."""
