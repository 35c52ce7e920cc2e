"""The book, checked the way a reader sees it: every chapter opened in headless Chromium.

The smoke book is built with the README's runner (``python -m adv2lib book --smoke``), unless
a fresh build of any scale is already in ``_build/html`` (every notebook stamp and the build
marker up to date), which is then reused. Each chapter is served from ``127.0.0.1`` (with
every other host unresolvable) and loaded with ``chromium --headless --dump-dom``. A small
script injected by the test server records, after MathJax has finished, how many figures
loaded, how many tables and typeset formulas the page holds and which URLs it fetched.

Without Chromium the test is skipped, unless ``ADV2_REQUIRE_BROWSER=1`` (set by CI), where it
fails instead.
"""
from __future__ import annotations

import functools
import html
import http.server
import json
import os
import shlex
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
import yaml

from adv2lib import paths, runner

pytestmark = pytest.mark.notebook

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")

#: What each chapter must show: (minimum figures, minimum tables, typeset maths expected).
EXPECTED = {
    "book/executed/intro": (1, 0, True),
    "book/method": (0, 0, True),
    "book/executed/models": (0, 1, False),
    "book/executed/01_adv2_vs_pgd": (3, 1, False),
    "book/executed/02_targeted_patch": (2, 1, False),
    "book/executed/03_random_class": (1, 1, False),
    "book/executed/04_transferability": (2, 1, False),
    "book/executed/04b_cross_model": (0, 1, False),
    "book/executed/05_attack_budget": (1, 1, False),
    "book/executed/05d_official_budget": (2, 3, False),
    "book/executed/05b_confidence": (1, 1, False),
    "book/executed/05c_ablations": (1, 3, False),
    "book/executed/06_robustness": (1, 2, False),
    "book/executed/07_ensemble": (1, 2, False),
    "book/executed/07b_ensemble_designs": (0, 3, False),
    "book/executed/08_aid": (1, 3, False),
    "book/executed/08b_aid_premise": (0, 2, False),
    "book/executed/08c_aid_variants": (0, 2, False),
    "book/executed/paper_vs_ours": (0, 4, False),
    "book/executed/reproduce": (0, 3, False),
    "book/executed/artifact_appendix": (0, 4, False),
    "book/references": (0, 0, False),
}

CHECK_SCRIPT = """
<script>
(function () {
  function report() {
    var main = document.querySelector('main') || document.body;
    var imgs = Array.prototype.slice.call(main.querySelectorAll('img'));
    var ok = function (i) { return i.complete && i.naturalWidth > 0 && i.naturalHeight > 0; };
    var r = {
      title: document.title,
      images: imgs.length,
      images_loaded: imgs.filter(ok).length,
      broken: imgs.filter(function (i) { return !ok(i); }).map(function (i) { return i.src; }),
      image_srcs: imgs.map(function (i) { return i.getAttribute('src'); }),
      tables: main.querySelectorAll('table').length,
      math_sources: main.querySelectorAll('.math').length,
      mjx: main.querySelectorAll('mjx-container').length,
      mathjax_errors: main.querySelectorAll('mjx-merror').length,
      resources: performance.getEntriesByType('resource').map(function (e) { return e.name; }),
      citations: main.querySelectorAll('.citation, [role="doc-biblioentry"], dl.citation dt').length,
      buttons: Array.prototype.slice.call(document.querySelectorAll('.article-header-buttons a')).map(
        function (a) { return {href: a.getAttribute('href'), cls: a.className}; })
    };
    var el = document.createElement('div');
    el.id = 'adv2-check';
    el.textContent = JSON.stringify(r);
    document.body.appendChild(el);
  }
  window.addEventListener('load', function () {
    var ready = (window.MathJax && MathJax.startup && MathJax.startup.promise) || Promise.resolve();
    ready.then(function () { setTimeout(report, 200); }, function () { setTimeout(report, 200); });
  });
})();
</script>
"""


def _chromium() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = _chromium()
    if exe is None:
        if os.environ.get("ADV2_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required (ADV2_REQUIRE_BROWSER=1) but was not found; "
                        "install it with: apt-get install chromium")
        pytest.skip("headless Chromium not found (apt-get install chromium); set ADV2_REQUIRE_BROWSER=1 to fail instead")
    return exe


def _fresh_build() -> bool:
    """True when ``_build/html`` is a complete, up-to-date build of the notebooks' current inputs."""
    marker = runner.build_html_dir() / "adv2-build.json"
    if not marker.is_file():
        return False
    info = json.loads(marker.read_text())
    profile, _, kind = info.get("scale", "").partition("-")
    scale = runner.Scale(profile, kind == "smoke")
    return info.get("key") == runner.book_key(scale) and not runner.stale_runs(scale)


@pytest.fixture(scope="module")
def book_html() -> Path:
    if not _fresh_build():
        # ADV2_BOOK_ARGS: the arguments `make test-book` built the book with (e.g. --interpreters);
        # notebooks whose stamps match are not re-executed.
        extra = shlex.split(os.environ.get("ADV2_BOOK_ARGS", ""))
        proc = subprocess.run([sys.executable, "-m", "adv2lib", "book", "--smoke", *extra], cwd=paths.root(),
                              capture_output=True, text=True, timeout=3600)
        assert proc.returncode == 0, f"smoke book build failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    html_dir = runner.build_html_dir()
    assert (html_dir / "index.html").is_file()
    return html_dir


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the built site and injects the check script into every HTML page."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        path = Path(self.translate_path(self.path))
        if path.is_file() and path.suffix == ".html":
            body = path.read_text(encoding="utf-8").replace("</body>", CHECK_SCRIPT + "</body>", 1).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture(scope="module")
def server(book_html):
    handler = functools.partial(_Handler, directory=str(book_html))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _chromium_args(exe: str, profile_dir: str) -> list[str]:
    return [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", f"--user-data-dir={profile_dir}",
            # Only the test server is reachable: every other host fails to resolve.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=3000"]


def _open(exe: str, url: str) -> dict:
    with tempfile.TemporaryDirectory() as profile_dir:
        proc = subprocess.run([*_chromium_args(exe, profile_dir), "--dump-dom", url],
                              capture_output=True, text=True, timeout=120)
    match = re.search(r'<div id="adv2-check"[^>]*>(.*?)</div>', proc.stdout, re.S)
    assert match, f"{url}: the page did not finish loading (no check record); stderr:\n{proc.stderr[-2000:]}"
    return json.loads(html.unescape(match.group(1)))


def _chapters() -> list[str]:
    toc = yaml.safe_load((paths.root() / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    return files


def test_every_chapter_has_an_expectation():
    assert set(_chapters()) == set(EXPECTED)


@pytest.mark.parametrize("chapter", list(EXPECTED))
def test_chapter_renders(chapter, chromium, server, book_html):
    page = book_html / f"{chapter}.html"
    assert page.is_file(), f"{chapter} was not built"
    result = _open(chromium, f"{server}/{chapter}.html")
    min_images, min_tables, needs_math = EXPECTED[chapter]

    assert not result["broken"], f"{chapter}: images that did not load: {result['broken']}"
    assert result["images_loaded"] >= min_images, f"{chapter}: {result['images_loaded']} figures, expected >= {min_images}"
    assert result["tables"] >= min_tables, f"{chapter}: {result['tables']} tables, expected >= {min_tables}"
    for src in result["image_srcs"]:
        if src and not src.startswith(("data:", "http")):
            local = (page.parent / src).resolve()
            assert local.is_file() and local.stat().st_size > 100, f"{chapter}: empty or missing image {src}"
            if local.suffix == ".png":
                assert local.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{chapter}: {src} is not a PNG"
    if needs_math:
        assert result["math_sources"] > 0, f"{chapter}: no maths on the page"
        assert result["mjx"] > 0, f"{chapter}: MathJax did not typeset anything"
        assert result["mathjax_errors"] == 0, f"{chapter}: MathJax reported TeX errors"
    if result["math_sources"]:
        assert result["mjx"] >= result["math_sources"], f"{chapter}: some formulas were not typeset"
    remote = [u for u in result["resources"] if not u.startswith(server)]
    assert not remote, f"{chapter}: the page fetched resources from the network: {remote}"
    if chapter == "book/references":
        assert result["citations"] >= 5, "the references page lists too few entries"


def _tracked() -> set[str]:
    out = subprocess.run(["git", "ls-files"], cwd=paths.root(), capture_output=True, text=True, check=True).stdout
    return set(out.splitlines())


@pytest.mark.parametrize("chapter", [c for c in EXPECTED if c.startswith("book/executed/")])
def test_notebook_page_carries_download_repository_and_launch_buttons(chapter, chromium, server):
    """Every notebook page: its executed .ipynb to download (served by the site), the repository
    and issue buttons, and Binder and Colab buttons that open a notebook the repository holds
    (the record's executed copy of the chapter: book/_ext/record_links.py)."""
    import urllib.request

    config = yaml.safe_load((paths.root() / "_config.yml").read_text())
    repo = config["repository"]["url"].rstrip("/")
    org_repo, branch = repo.split("github.com/")[1], config["repository"]["branch"]
    links = [b["href"] for b in _open(chromium, f"{server}/{chapter}.html")["buttons"] if b["href"]]
    name = chapter.rsplit("/", 1)[1]

    downloads = [h for h in links if h.endswith(f"{name}.ipynb") and "_sources" in h]
    assert downloads, f"{chapter}: no .ipynb download button among {links}"
    with urllib.request.urlopen(f"{server}/{chapter.rsplit('/', 1)[0]}/{downloads[0]}") as response:
        notebook = json.loads(response.read())
    assert notebook["cells"] and any(c.get("outputs") for c in notebook["cells"] if c["cell_type"] == "code")
    assert repo in links, f"{chapter}: no repository button"
    assert any(h.startswith(f"{repo}/issues") for h in links), f"{chapter}: no issues button"

    binder = [h for h in links if h.startswith(f"https://mybinder.org/v2/gh/{org_repo}/{branch}?urlpath=tree/")]
    colab = [h for h in links if h.startswith(f"https://colab.research.google.com/github/{org_repo}/blob/{branch}/")]
    assert len(binder) == 1 and len(colab) == 1, f"{chapter}: launch buttons {links}"
    targets = {binder[0].split("urlpath=tree/", 1)[1], colab[0].split(f"/blob/{branch}/", 1)[1]}
    assert targets == {f"record/embedded-full/executed/{name}.ipynb"}, targets
    assert targets <= _tracked(), f"{chapter}: the launch buttons open {targets}, which git does not hold"


def test_mathjax_is_served_locally(book_html):
    method = (book_html / "book" / "method.html").read_text()
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', method)
    mathjax = [s for s in scripts if "mathjax" in s.lower()]
    assert mathjax and all(not s.startswith(("http:", "https:", "//")) for s in mathjax), mathjax
    assert (book_html / "_static" / "mathjax" / "tex-chtml.js").is_file()


def test_screenshot_of_the_intro_is_not_blank(chromium, server, tmp_path):
    shot = tmp_path / "intro.png"
    with tempfile.TemporaryDirectory() as profile_dir:
        subprocess.run([*_chromium_args(chromium, profile_dir), f"--screenshot={shot}", "--window-size=1280,1600",
                        f"{server}/book/executed/intro.html"], capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000, "the screenshot is missing or suspiciously small"
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)
    assert pixels.std() > 0.02, "the intro page renders as a blank image"
