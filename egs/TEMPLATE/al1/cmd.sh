# shellcheck shell=bash
# Where jobs run (ESPnet's cmd.sh): decoding, pool scoring, the teacher cache, and every
# training (ESPnet's asr_train, with --ngpu) go through espnet_lp.bin.launch / al_run.
#   local: processes on this machine (nj at once), one log per job
#   slurm: one srun job step per job, with slurm_opts, e.g.
#          cmd_backend=slurm slurm_opts="--partition=cpu --time=4:00:00" ./run.sh
#          (training jobs with --ngpu N also get --gres=gpu:N)
# A failed job fails its stage, naming its log.
cmd_backend=${cmd_backend:-local}
slurm_opts=${slurm_opts:-}
