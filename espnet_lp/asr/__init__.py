"""ESPnet components of espnet-lp: loss-prediction decoder, LP losses, KD, LP ASR model."""
