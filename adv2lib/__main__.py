"""Command line: ``python -m adv2lib <command>``. See ``python -m adv2lib --help``."""
from __future__ import annotations

from .cli import main

raise SystemExit(main())
