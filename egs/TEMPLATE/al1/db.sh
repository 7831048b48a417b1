# shellcheck shell=bash
# Where the corpora live (set them here or in the environment). Empty: the recipe generates a
# small synthetic corpus in the real layout (demo). A recipe's --corpus_dir overrides these.
LIBRISPEECH=${LIBRISPEECH:-}    # LibriSpeech/ or its parent
AISHELL=${AISHELL:-}            # the directory holding data_aishell/ and resource_aishell/
