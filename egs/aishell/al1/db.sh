# shellcheck shell=bash
# Where the corpus lives (the directory holding data_aishell/ and resource_aishell/). Empty:
# the recipe generates a small synthetic corpus in the real AISHELL-1 layout (demo). Set it,
# or pass --aishell_dir, to use the real AISHELL-1.
AISHELL=${AISHELL:-}
