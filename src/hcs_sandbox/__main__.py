"""``python -m hcs_sandbox``: the same CLI as the ``hcs-sandbox`` command."""

from __future__ import annotations

import sys

from hcs_sandbox.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
