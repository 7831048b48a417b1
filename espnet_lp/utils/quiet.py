"""Silence the noise ESPnet's dependencies make at import time, once for the whole package.

Two modules print on import: ESPnet's transformer attention module announces that the
optional ``flash_attn`` is missing, and ``g2p_en`` (imported by ESPnet's tokenizers) tries
to download NLTK data, which fails offline with several lines of errors. A meta-path hook
wraps exactly those imports: their output is dropped and NLTK downloads are skipped (the
data are then looked up locally as usual, and a missing resource still raises when used).
The hook costs nothing until those modules are imported.
"""

import contextlib
import importlib.abc
import importlib.machinery
import io
import sys
from typing import Optional

NOISY_MODULES = frozenset({"espnet.nets.pytorch_backend.transformer.attention", "g2p_en.g2p"})


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        with contextlib.ExitStack() as stack:
            stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
            stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
            if module.__name__.startswith("g2p_en"):
                import nltk

                stack.enter_context(_no_nltk_download(nltk))
            self._loader.exec_module(module)


@contextlib.contextmanager
def _no_nltk_download(nltk):
    original = nltk.download
    nltk.download = lambda *args, **kwargs: False
    try:
        yield
    finally:
        nltk.download = original


class _QuietFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path, target=None
    ) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname not in NOISY_MODULES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _QuietLoader(spec.loader)
                return spec
        return None


def install() -> None:
    """Put the hook first on ``sys.meta_path`` (idempotent)."""
    if not any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())
