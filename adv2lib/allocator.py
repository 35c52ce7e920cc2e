"""A faster memory allocator for CPU runs: same numbers, less time.

PyTorch's CPU tensors come from the C library's ``malloc``. With glibc's defaults, a block of
more than 128 KiB (an activation of a 50-image batch is 1-5 MiB here) is mapped afresh from
the kernel and unmapped when freed, so every pass pays page faults on memory it just gave
back. Measured on the 2-core CPU (one thread, 50 images, per image, two runs of
``scripts/bench_allocator.py``'s measurement): forward + input gradient ResNet 1.66-2.00 ->
1.21-1.29 ms with tcmalloc, DenseNet 2.04-2.07 -> 1.58-1.69 ms; forward alone ResNet 0.91-1.25
-> 0.41-0.50 ms. The main experiment on 100 ResNet images took 301.6 -> 238.4 s (Ray engine).
The arithmetic is untouched, so every result is bit-identical (``tests/test_allocator.py``
runs attacks both ways and compares; the two main-experiment stores: 18 of 18 batches).

Two ways, tried in order:

* **tcmalloc** (gperftools' caching allocator; Debian/Ubuntu ``libtcmalloc-minimal4``), loaded
  with ``LD_PRELOAD``. The usual advice for PyTorch on CPUs (Intel's *PyTorch CPU performance
  tuning guide*; ``torch.backends.xeon.run_cpu --enable_tcmalloc``).
* otherwise glibc's own tunables: keep blocks up to 32 MiB (the largest value glibc accepts)
  on the heap instead of mapping them, and do not hand freed memory back.

Both act when a process starts, so :func:`reexec` restarts ``python -m adv2lib`` once with
the environment set; the notebooks' kernels and Ray's workers inherit it. Set
``ADV2_ALLOCATOR=system`` to keep the C library's defaults.
"""
from __future__ import annotations

import glob
import os
import sys

__all__ = ["ENV", "find_tcmalloc", "fast_env", "without", "describe", "reexec"]

#: ``system``: keep the defaults; ``tcmalloc`` / ``glibc``: set by :func:`reexec` (what was chosen).
ENV = "ADV2_ALLOCATOR"
#: The values of ``ADV2_ALLOCATOR``: the user's opt-out, and what :func:`reexec` records.
CHOICES = ("system", "tcmalloc", "glibc", "preloaded")
#: glibc caps ``mmap_threshold`` at half its heap size, 32 MiB on 64-bit; a larger value is ignored.
GLIBC_TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=17179869184"
_PATTERNS = ("/usr/lib/*/libtcmalloc_minimal.so.4", "/usr/lib64/libtcmalloc_minimal.so.4",
             "/usr/lib/libtcmalloc_minimal.so.4", "/usr/local/lib/libtcmalloc_minimal.so.4")


def find_tcmalloc(patterns=_PATTERNS) -> str | None:
    """The path of tcmalloc's shared library (``CONDA_PREFIX/lib`` first), or None."""
    prefix = os.environ.get("CONDA_PREFIX")
    candidates = ([os.path.join(prefix, "lib", "libtcmalloc_minimal.so.4")] if prefix else []) + list(patterns)
    for pattern in candidates:
        for path in sorted(glob.glob(pattern)):
            if os.path.isfile(path):
                return path
    return None


def without(environ=None) -> dict:
    """A copy of ``environ`` without the variables that choose an allocator (for a child process
    that should choose afresh)."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items() if k not in ("LD_PRELOAD", "GLIBC_TUNABLES", ENV)}


def fast_env(environ=None, tcmalloc: str | None = "find") -> dict:
    """The variables to add to ``environ`` for the faster allocator ({} when there is nothing
    to do: not Linux, ``ADV2_ALLOCATOR`` already set, or an allocator already preloaded)."""
    environ = os.environ if environ is None else environ
    if not sys.platform.startswith("linux") or environ.get(ENV):
        return {}
    preload = environ.get("LD_PRELOAD", "")
    if "tcmalloc" in preload or "jemalloc" in preload:
        return {ENV: "preloaded"}
    path = find_tcmalloc() if tcmalloc == "find" else tcmalloc
    if path:
        return {ENV: "tcmalloc", "LD_PRELOAD": f"{path}:{preload}" if preload else path}
    tunables = environ.get("GLIBC_TUNABLES")
    return {ENV: "glibc", "GLIBC_TUNABLES": f"{tunables}:{GLIBC_TUNABLES}" if tunables else GLIBC_TUNABLES}


def _mapped(name: str) -> bool:
    """Whether a shared library whose path contains ``name`` is loaded in this process (Linux)."""
    try:
        with open("/proc/self/maps") as maps:
            return name in maps.read()
    except OSError:
        return False


def describe(environ=None) -> str:
    """The allocator this process runs with, in words (for the build's timings). A preloaded
    tcmalloc or jemalloc is reported only when it is really loaded."""
    environ = os.environ if environ is None else environ
    kind = environ.get(ENV, "")
    preloaded = [lib for lib in ("tcmalloc", "jemalloc") if _mapped(lib)]
    if preloaded:
        return f"{preloaded[0]}: LD_PRELOAD={environ.get('LD_PRELOAD', '')}"
    if kind == "glibc":
        return f"glibc tunables: {environ.get('GLIBC_TUNABLES', '')}"
    return "C library defaults" + (f" ({ENV}={kind})" if kind else "")


def reexec(argv=None) -> None:
    """Restart this ``python -m adv2lib`` command with the faster allocator, once; returns
    without doing anything when there is nothing to change."""
    value = os.environ.get(ENV)
    if value and value not in CHOICES:
        print(f"adv2lib: error: {ENV}={value!r} is not understood: set it to 'system' to keep the C library's "
              f"allocator, or unset it", file=sys.stderr)
        raise SystemExit(2)
    extra = fast_env()
    if not extra or set(extra) == {ENV}:
        os.environ.update(extra)
        return
    argv = sys.argv[1:] if argv is None else list(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "adv2lib", *argv], {**os.environ, **extra})
