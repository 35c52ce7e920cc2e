"""A Sphinx extension: the launch buttons of a chapter open the record's executed notebook.

sphinx-book-theme builds a notebook page's Binder and Colab links from the page's own path in the
repository (``book/executed/<name>.ipynb``, see ``sphinx_book_theme/header_buttons/launch.py``).
That folder is git-ignored: it is where ``python -m adv2lib book`` puts the notebooks it executed
or rendered for this build. The executed notebooks the repository holds are the record's
(``record/<profile>-full/executed/``, :mod:`adv2lib.record`), so after the theme has made its
links (``html-page-context``, priority 501) this extension points them at the record's copy of the
same chapter, or at the chapter's parameterised source in ``notebooks/`` for a profile whose record
is not in the repository. The profile is ``ADV2_BOOK_PROFILE`` (set by the runner; default
``embedded``). The download button needs nothing: it serves the page's own ``.ipynb`` from the site.
"""
from __future__ import annotations

import os
from pathlib import Path

#: Where the runner puts the notebooks of a build, relative to the book's root (``_toc.yml``).
EXECUTED = "book/executed/"


def launch_target(root: Path, name: str, profile: str) -> str | None:
    """The repository path a chapter's launch buttons open: the record's executed notebook when
    the repository holds it, else the chapter's source notebook; ``None`` if neither exists."""
    for folder in (f"record/{profile}-full/executed", "notebooks"):
        if (Path(root) / folder / f"{name}.ipynb").is_file():
            return f"{folder}/{name}.ipynb"
    return None


def _rewrite(buttons: list, old: str, new: str) -> None:
    """The launch links (absolute URLs) only: the download button's relative link to the page's own
    ``_sources/...ipynb`` in the site stays as it is."""
    for button in buttons:
        if str(button.get("url", "")).startswith(("http://", "https://")):
            button["url"] = button["url"].replace(old, new)
        _rewrite(button.get("buttons", []), old, new)


def point_at_record(app, pagename, templatename, context, doctree) -> None:
    if not pagename.startswith(EXECUTED):
        return
    new = launch_target(Path(app.srcdir), pagename[len(EXECUTED):], os.environ.get("ADV2_BOOK_PROFILE", "embedded"))
    if new is not None:
        _rewrite(context.get("header_buttons", []), f"{pagename}.ipynb", new)


def setup(app):
    app.connect("html-page-context", point_at_record, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
