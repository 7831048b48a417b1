"""Command-line entry points (ESPnet style: ``get_parser()`` + ``main(cmd=None)``).

The project's CLIs drop the noise of two imports of ESPnet's stack (see
:func:`espnet_lp.utils.import_hooks.quiet_espnet_imports`).
"""

from espnet_lp.utils.import_hooks import quiet_espnet_imports

quiet_espnet_imports()
