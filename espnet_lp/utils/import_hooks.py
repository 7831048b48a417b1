"""Act when a given module is imported, without importing it ourselves.

Used for two things that must happen once per process, yet must not make ``import espnet_lp``
slow by importing ESPnet:

- silence (:func:`quiet_espnet_imports`, the project's CLIs) the noise of two imports in
  ESPnet's stack: ESPnet's transformer attention module
  prints that the optional ``flash_attn`` is missing, and ``g2p_en`` (imported by ESPnet's
  tokenizers) tries to download NLTK data, which fails offline with several lines of errors.
  Their output is dropped and NLTK downloads are skipped (data are still looked up locally,
  and a missing resource still raises when used);
- register espnet-lp's components into ``espnet2.tasks.asr`` right after it is imported.
"""

# Only ``sys`` at module level: espnet_lp.pth imports this module in every interpreter start,
# so anything heavier (importlib.abc alone pulls in ~9 ms of modules) is imported on use.
import sys

_quiet: set = set()
_callbacks: dict = {}  # module name -> [callback]


class _HookedLoader:
    """Wraps a module's loader (duck-typed ``importlib.abc.Loader``)."""

    def __init__(self, loader, name: str) -> None:
        self._loader = loader
        self._name = name

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        if self._name in _quiet:
            _exec_quietly(self._loader, module, self._name)
        else:
            self._loader.exec_module(module)
        for callback in _callbacks.get(self._name, []):
            try:
                callback()
            except Exception as e:  # never break the user's import of ESPnet
                sys.stderr.write(f"espnet_lp: could not register into {self._name} "
                                 f"({type(e).__name__}: {e})\n")


def _exec_quietly(loader, module, name: str) -> None:
    import contextlib
    import io

    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
        if name.startswith("g2p_en"):
            import nltk

            original = nltk.download
            nltk.download = lambda *args, **kwargs: False
            stack.callback(setattr, nltk, "download", original)
        loader.exec_module(module)


class _HookFinder:
    """A ``sys.meta_path`` finder (duck-typed ``importlib.abc.MetaPathFinder``) that wraps the
    loaders of the watched modules."""

    def find_spec(self, fullname: str, path, target=None):
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


def when_imported(name: str, callback) -> None:
    """Call ``callback`` right after module ``name`` is imported, or now if it already is."""
    if name in sys.modules:
        callback()
        return
    if callback not in _callbacks.setdefault(name, []):
        _callbacks[name].append(callback)
    _install_finder()


def quiet_espnet_imports() -> None:
    """Silence two noisy imports of ESPnet's stack for this process (the project's CLIs).

    Not done on a plain ``import espnet_lp`` (which the .pth file runs in every interpreter):
    skipping g2p_en's NLTK downloads would change stock ESPnet's behaviour online.
    """
    quiet_import("espnet.nets.pytorch_backend.transformer.attention")
    quiet_import("g2p_en.g2p")
