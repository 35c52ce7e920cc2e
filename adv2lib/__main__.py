"""Command line: ``python -m adv2lib <command>``. See ``python -m adv2lib --help``."""
from __future__ import annotations

from .allocator import reexec

reexec()   # once, with the faster allocator (adv2lib.allocator; ADV2_ALLOCATOR=system keeps the default)

from .cli import main  # noqa: E402

raise SystemExit(main())
