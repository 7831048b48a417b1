"""Human annotation of what a round selects: export for annotators, import of their work.

One directory per selection, ``<round dir>/annotation/`` (the round that selected; for the
seeded initial set ``initial/round0/annotation``)::

    export.json        what was selected: ids, audio, durations, scores, the model's
                       hypotheses, and where the transcripts go (written first, kept)
    hyp/               the round model's decoding of the selected utterances
    tasks.json         Label Studio import: one task per utterance, hypothesis as prediction
    label_config.xml   Label Studio labeling config (audio player + transcript box)
    tasks.tsv          the same as a table, with an empty transcript column to fill
    audio/             browser-playable audio of every task (links, or WAV copies)
    README.txt         how to serve the audio to Label Studio and what to run next
    text               the imported transcripts (only after full validation)
    import.json        what was imported, from which file, with which options

:mod:`.export` writes the export, :mod:`.formats` reads annotators' files (Label Studio's
JSON export, the filled TSV), :mod:`.importer` checks them and writes the transcripts.
"""
