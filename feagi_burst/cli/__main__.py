"""`python -m feagi_burst.cli`: the `feagi-burst` command."""
from __future__ import annotations

from feagi_burst.cli import main

if __name__ == "__main__":
    main()
