"""ESPnet tasks extended with espnet-lp's component choices."""
