# shellcheck shell=bash
# How parallel jobs run: "local" (processes on this machine) or "slurm" (srun/sbatch).
# Pool scoring and decoding are split into nj jobs by key files and run through this backend.
cmd_backend=${cmd_backend:-local}
# Extra options given to srun when cmd_backend=slurm, e.g. "--partition=gpu --gres=gpu:1".
slurm_opts=${slurm_opts:-}
export cmd_backend slurm_opts
