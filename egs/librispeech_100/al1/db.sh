# shellcheck shell=bash
# Where the corpus lives. Empty: the recipe generates a small synthetic corpus in the real
# LibriSpeech layout (demo). Set it, or pass --librispeech_dir, to use the real LibriSpeech.
LIBRISPEECH=${LIBRISPEECH:-}
