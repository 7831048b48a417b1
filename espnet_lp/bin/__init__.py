"""Command-line entry points (ESPnet style: ``get_parser()`` + ``main(cmd=None)``)."""
