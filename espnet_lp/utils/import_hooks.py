"""Act when a given module is imported, without importing it ourselves.

Used for two things that must happen once per process, in every process (including workers
started with ``spawn``), yet must not make ``import espnet_lp`` slow by importing ESPnet:

- silence the noise of two imports in ESPnet's stack: ESPnet's transformer attention module
  prints that the optional ``flash_attn`` is missing, and ``g2p_en`` (imported by ESPnet's
  tokenizers) tries to download NLTK data, which fails offline with several lines of errors.
  Their output is dropped and NLTK downloads are skipped (data are still looked up locally,
  and a missing resource still raises when used);
- register espnet-lp's components into ``espnet2.tasks.asr`` right after it is imported.
"""

import contextlib
import importlib.abc
import importlib.machinery
import io
import sys
from typing import Callable, Dict, List, Optional

_quiet: set = set()
_callbacks: Dict[str, List[Callable[[], None]]] = {}


class _HookedLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader, name: str) -> None:
        self._loader = loader
        self._name = name

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        with contextlib.ExitStack() as stack:
            if self._name in _quiet:
                stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
                stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
                if self._name.startswith("g2p_en"):
                    stack.enter_context(_no_nltk_download())
            self._loader.exec_module(module)
        for callback in _callbacks.get(self._name, []):
            callback()


@contextlib.contextmanager
def _no_nltk_download():
    import nltk

    original = nltk.download
    nltk.download = lambda *args, **kwargs: False
    try:
        yield
    finally:
        nltk.download = original


class _HookFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path, target=None
    ) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname not in _quiet and fullname not in _callbacks:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _HookedLoader(spec.loader, fullname)
                return spec
        return None


def _install_finder() -> None:
    if not any(isinstance(f, _HookFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _HookFinder())


def quiet_import(name: str) -> None:
    """Drop what module ``name`` prints while it is imported (idempotent)."""
    _quiet.add(name)
    _install_finder()


def when_imported(name: str, callback: Callable[[], None]) -> None:
    """Call ``callback`` right after module ``name`` is imported, or now if it already is."""
    if name in sys.modules:
        callback()
        return
    if callback not in _callbacks.setdefault(name, []):
        _callbacks[name].append(callback)
    _install_finder()
