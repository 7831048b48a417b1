"""Bad input, as a new user makes it, fed to the active-learning CLIs.

The rows of :data:`AL_CASES` are checked as those of ``tests/test_bad_inputs.py`` (same
:class:`Case`, same :func:`check`): non-zero exit, no traceback, the offending file, line,
utterance or option named, the output location unchanged. No row trains a model: every
mistake must be found before the first training, decoding or scoring job starts.
"""

import json
import shlex
import shutil
from pathlib import Path

import pytest
import yaml

from espnet_lp.data.asr_inputs import build_char_token_list, write_token_list
from espnet_lp.data.datadir import DataDir
from tests.asr.conftest import TINY
from tests.io_helpers import python
from tests.test_bad_inputs import (  # noqa: F401  (base, model_base: fixtures)
    Case,
    _copy,
    base,
    broken_state,
    check,
    config_set,
    copy_dir,
    keys,
    missing_audio,
    model_base,
    resampled,
    scp_audio,
    truncated,
    write,
)

DATA = "{ws}/data"
RUN_DATA = (f"--train_set {DATA}/train_clean_100 --valid_set {DATA}/dev_clean "
            f"--test_sets {DATA}/dev_clean --token_list {{ws}}/tokens/tokens.txt "
            f"--train_config {TINY}")
#: al_run without strategies and budgets, then with them.
RUN_ONLY_DATA = f"--al_dir {{ws}}/out --rounds 1 {RUN_DATA}"
RUN_NO_BUDGETS = f"{RUN_ONLY_DATA} --strategies random loss_prediction"
RUN = f"{RUN_NO_BUDGETS} --initial_utts 8 --budget_utts 6"
MODEL = "--asr_train_config {ws}/exp/config.yaml --asr_model_file {ws}/exp/model.pth"
SCORE = f"{MODEL} --strategy loss_prediction --data_dir {DATA}/dev_clean --output_dir {{ws}}/out"
REFIT = f"{MODEL} --data_dir {DATA}/dev_clean --output_file {{ws}}/out/refit.pth --steps 5"
REPORT = "--al_dir {ws}/al --sets dev_clean --plot false --output_dir {ws}/out"
ANNOTATE = "import --al_dir {ws}/ann --strategy random --round 0"
METRICS = "{ws}/al/random/round1/metrics.json"


def al_config(text: str):
    return write("al.yaml", text, "{ws}/al.yaml")


def write_raw(path, text: str) -> str:
    """Write ``text`` as it is (no ``{ws}``); the report must name the file."""
    Path(path).write_text(text, encoding="utf-8")
    return str(path)


def filled_tsv(cell_of_row_2: str):
    """The export's ``tasks.tsv`` filled in (every transcript ``HELLO``), with the transcript
    cell of its second row as given; the report must name that row's ``file:line``."""
    def damage(ws):
        path = ws / "ann/random/round0/annotation/tasks.tsv"
        lines = path.read_text(encoding="utf-8").splitlines()
        rows = [i for i, line in enumerate(lines) if i > 1 and line.strip()]
        for n, i in enumerate(rows):
            cells = lines[i].split("\t")
            cells[-1] = cell_of_row_2 if n == 1 else "HELLO"
            lines[i] = "\t".join(cells)
        filled = ws / "filled.tsv"
        filled.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return f"{filled}:{rows[1] + 1}"
    return damage


def label_studio_export(result):
    """The export's ``tasks.json`` as Label Studio exports it, each task annotated with
    ``result`` (its first task's given as is: the report must name that task)."""
    def damage(ws):
        tasks = json.loads((ws / "ann/random/round0/annotation/tasks.json").read_text())
        for n, task in enumerate(tasks):
            task["id"] = n + 1
            task["annotations"] = [{"id": 1, "result": result if n == 0 else [
                {"from_name": "transcription", "to_name": "audio", "type": "textarea",
                 "value": {"text": ["HELLO"]}}]}]
        (ws / "export.json").write_text(json.dumps(tasks), encoding="utf-8")
        return f"{ws}/export.json: task 1"
    return damage


def zh_tokens(ws):
    write_token_list(ws / "zh_tokens/tokens.txt", build_char_token_list(
        DataDir.read(ws / "data/zh_train").text.values()))


def other_run(ws):
    """An AL dir of a run with other settings."""
    (ws / "out").mkdir()
    (ws / "out/config.yaml").write_text(yaml.safe_dump({"digest": "0123456789abcdef"}))
    return "made with other settings"


def pool_changed(ws):
    """An AL dir of this very run, whose pool transcripts changed since it was made."""
    from espnet_lp.al.config_check import input_fingerprints
    from espnet_lp.bin.al_run import build_config, get_parser

    cfg = build_config(get_parser().parse_args(shlex.split(RUN.format(ws=ws))))
    inputs = input_fingerprints(cfg)
    text = ws / "data/train_clean_100/text"
    inputs[str(text)] = "0" * 40
    (ws / "out").mkdir()
    (ws / "out/config.yaml").write_text(yaml.safe_dump({"digest": cfg.digest(),
                                                        "inputs": inputs}))
    return f"{text} changed since"


def added_strategies_damaged(ws):
    """An AL dir of this very run whose record of the strategies that joined it is damaged."""
    from espnet_lp.al.config_check import input_fingerprints
    from espnet_lp.bin.al_run import build_config, get_parser

    cfg = build_config(get_parser().parse_args(shlex.split(RUN.format(ws=ws))))
    (ws / "out").mkdir()
    (ws / "out/config.yaml").write_text(yaml.safe_dump({
        "digest": cfg.digest(), "strategies": cfg.strategies,
        "added_strategies": "ctc_confidence", "inputs": input_fingerprints(cfg)}))
    return "strategies / added_strategies are not lists of strategy names"


def no_digest(ws):
    """A run config.yaml without its digest (damaged by hand)."""
    (ws / "out").mkdir()
    (ws / "out/config.yaml").write_text(yaml.safe_dump({"strategies": ["random"]}))
    return "made with other settings"


def edit_metrics(**decode):
    def damage(ws):
        path = Path(METRICS.format(ws=ws))
        metrics = json.loads(path.read_text())
        metrics["decode"]["dev_clean"].update(decode)
        path.write_text(json.dumps(metrics))
        return str(path)
    return damage


AL_CASES = [
    # al_run: strategies, budgets, resources
    Case("run_unknown_strategy", "al_run", f"{RUN} --strategies random nope", "'nope'"),
    Case("run_only_strategy_not_in_the_run", "al_run", f"{RUN} --only_strategies true_loss",
         "only_strategies: 'true_loss' is not one of the run's strategies"),
    Case("run_budget_zero", "al_run", f"{RUN} --budget_utts 0", "budget_per_round"),
    Case("run_budget_negative", "al_run", f"{RUN} --budget_utts -3", "budget_per_round"),
    Case("run_budget_not_a_number", "al_run", f"{RUN} --budget_utts six", "--budget_utts"),
    Case("run_budget_beyond_pool", "al_run", f"{RUN} --budget_utts 1000",
         "budget_per_round: 1000 utterances is more than the training pool"),
    Case("run_budget_hours_beyond_pool", "al_run",
         f"{RUN_NO_BUDGETS} --initial_utts 8 --budget_hours 5", "budget_per_round: 5 h"),
    Case("run_initial_beyond_pool", "al_run", f"{RUN} --initial_utts 1000",
         "initial: 1000 utterances"),
    Case("run_initial_zero", "al_run", f"{RUN} --initial_utts 0", "initial: the budget"),
    Case("run_budget_hours_below_every_utterance", "al_run",
         f"{RUN_NO_BUDGETS} --initial_utts 8 --budget_hours 0.0001",
         "budget_per_round: 0.0001 h is less than the shortest utterance"),
    Case("run_initial_hours_below_every_utterance", "al_run",
         f"{RUN_NO_BUDGETS} --initial_hours 0.00001 --budget_utts 6",
         "initial: 1e-05 h is less than the shortest utterance"),
    # held-out sets: results are keyed by directory name; a pool utterance is training data
    Case("run_test_sets_of_one_name", "al_run",
         f"{RUN} --test_sets {DATA}/dev_clean {{ws}}/more/dev_clean",
         "share the directory name 'dev_clean'", damage=copy_dir("data/dev_clean",
                                                                 "more/dev_clean")),
    Case("run_test_set_is_the_pool", "al_run", f"{RUN} --test_sets {DATA}/train_clean_100",
         "a test set must be held out"),
    Case("run_valid_set_shares_pool_utterances", "al_run",
         f"{RUN} --valid_set {DATA}/train_clean_100", "a validation set must be held out"),
    Case("run_initial_hours_zero", "al_run",
         f"{RUN_NO_BUDGETS} --initial_hours 0 --budget_utts 6", "initial: the budget"),
    Case("run_utts_and_hours", "al_run", f"{RUN} --budget_hours 1", "not both"),
    Case("run_nj_0", "al_run", f"{RUN} --nj 0", "nj"),
    Case("run_nj_text", "al_run", f"{RUN} --nj two", "--nj"),
    Case("run_rounds_negative", "al_run", f"{RUN} --rounds -1", "rounds"),
    Case("run_unknown_backend", "al_run", f"{RUN} --backend pbs", "'pbs'"),
    Case("run_human_oracle_true_loss", "al_run", f"{RUN} --oracle human --strategies true_loss",
         "true_loss reads the pool's hidden transcripts"),
    # al_run: the --al_config yaml
    Case("run_missing_al_config", "al_run", f"{RUN} --al_config {{ws}}/nope.yaml",
         "{ws}/nope.yaml"),
    Case("run_al_config_not_yaml", "al_run", f"{RUN} --al_config {{ws}}/al.yaml",
         damage=al_config("rounds: [1\n")),
    Case("run_al_config_unknown_key", "al_run", f"{RUN} --al_config {{ws}}/al.yaml", "'budget'",
         damage=al_config("budget: 3\n")),
    Case("run_al_config_fractional_seed", "al_run", f"{RUN} --al_config {{ws}}/al.yaml",
         "seed must be an integer", damage=al_config("seed: 1.5\n")),
    Case("run_al_config_lp_refit_not_bool", "al_run", f"{RUN} --al_config {{ws}}/al.yaml",
         "lp_refit must be true or false", damage=al_config("lp_refit: maybe\n")),
    Case("run_al_config_zero_clusters", "al_run", f"{RUN} --al_config {{ws}}/al.yaml",
         "num_clusters", damage=al_config("num_clusters: 0\n")),
    Case("run_al_config_unknown_acquisition", "al_run", f"{RUN} --al_config {{ws}}/al.yaml",
         "acquisition must be one of", damage=al_config("acquisition: sample\n")),
    Case("run_al_config_negative_beta", "al_run", f"{RUN} --al_config {{ws}}/al.yaml",
         "acquisition_beta must be a number >= 0", damage=al_config("acquisition_beta: -2\n")),
    Case("run_al_config_typicality_gate_above_one", "al_run",
         f"{RUN} --al_config {{ws}}/al.yaml", "typicality_gate must be a number in (0, 1]",
         damage=al_config("acquisition: typical\ntypicality_gate: 2\n")),
    Case("run_al_config_typicality_knn_float", "al_run", f"{RUN} --al_config {{ws}}/al.yaml",
         "typicality_knn must be an integer >= 1",
         damage=al_config("acquisition: typical\ntypicality_knn: 2.5\n")),
    Case("run_al_config_strategies_string", "al_run",
         f"{RUN_ONLY_DATA} --initial_utts 8 --budget_utts 6 --al_config {{ws}}/al.yaml",
         "strategies must be a list", damage=al_config("strategies: random\n")),
    Case("run_al_config_budget_key_typo", "al_run",
         f"{RUN_NO_BUDGETS} --al_config {{ws}}/al.yaml", "budget_per_round",
         damage=al_config("initial: {{utterances: 8}}\nbudget_per_round: {{utts: 3}}\n")),
    # al_run: data, token list, model config
    Case("run_missing_pool", "al_run", f"{RUN} --train_set {{ws}}/nope", "{ws}/nope"),
    Case("run_pool_without_wav_scp", "al_run", f"{RUN} --train_set {{ws}}/pool",
         "{ws}/pool/wav.scp", damage=copy_dir("data/train_clean_100", "pool", ["wav.scp"])),
    Case("run_pool_without_utt2dur", "al_run", f"{RUN} --train_set {{ws}}/pool", "utt2dur",
         damage=copy_dir("data/train_clean_100", "pool", ["utt2dur"])),
    Case("run_valid_without_text", "al_run", f"{RUN} --valid_set {{ws}}/notext",
         "{ws}/notext", damage=copy_dir("data/dev_clean", "notext", ["text"])),
    Case("run_missing_test_set", "al_run", f"{RUN} --test_sets {{ws}}/nope", "{ws}/nope"),
    Case("run_token_list_of_another_corpus", "al_run",
         f"{RUN} --token_list {{ws}}/zh_tokens/tokens.txt", "become <unk>", damage=zh_tokens),
    Case("run_missing_train_config", "al_run", f"{RUN} --train_config {{ws}}/nope.yaml",
         "{ws}/nope.yaml"),
    # al_run: the AL dir (state of another run)
    Case("run_state_of_other_settings", "al_run", RUN, damage=other_run),
    Case("run_pool_changed_since_the_last_run", "al_run", RUN, damage=pool_changed),
    Case("run_added_strategies_damaged", "al_run", RUN,
         damage=added_strategies_damaged),
    Case("run_config_without_digest", "al_run", RUN, damage=no_digest),
    Case("run_state_config_not_yaml", "al_run", RUN,
         damage=write("out/config.yaml", "digest: [x\n", "{ws}/out/config.yaml")),
    Case("run_al_dir_is_a_file", "al_run", f"{RUN} --al_dir {{ws}}/tokens/tokens.txt",
         "{ws}/tokens/tokens.txt: exp dir not a directory", output="{ws}/tokens"),
    # al_run: options of the jobs it starts, checked before the first one
    Case("run_decode_beam_0", "al_run", f"{RUN} --decode_opts '--beam_size 0'",
         "--decode_opts: --beam_size must be >= 1"),
    Case("run_decode_unknown_option", "al_run", f"{RUN} --decode_opts '--beam_size 1 --beem 2'",
         "--beem"),
    Case("run_decode_sets_the_output", "al_run", f"{RUN} --decode_opts '--output_dir x'",
         "--output_dir is set by the loop itself"),
    Case("run_decode_unclosed_quote", "al_run", f"{RUN} --decode_opts \"--beam_size '1\"",
         "--decode_opts"),
    Case("run_score_negative_batch", "al_run", f"{RUN} --score_opts '--batch_size -1'",
         "--score_opts: --batch_size must be >= 0"),
    Case("run_lp_refit_steps_0", "al_run", f"{RUN} --lp_refit_opts '--steps 0'",
         "--lp_refit_opts: --steps must be >= 1"),
    Case("run_train_unknown_option", "al_run", f"{RUN} --train_opts '--max_epochs 3'",
         "--train_opts '--max_epochs 3'"),
    Case("run_train_epochs_not_a_number", "al_run", f"{RUN} --train_opts '--max_epoch two'",
         "--max_epoch"),
    Case("run_train_sets_the_output", "al_run", f"{RUN} --train_opts '--output_dir x'",
         "--output_dir is set by the loop itself"),
    Case("run_kd_without_teacher", "al_run", f"{RUN} --kd_weight 0.5", "teacher spec"),
    Case("run_missing_teacher_spec", "al_run",
         f"{RUN} --kd_weight 0.5 --teacher_spec {{ws}}/nope.yaml", "{ws}/nope.yaml"),
    Case("run_kd_weight_1", "al_run", f"{RUN} --kd_weight 1 --teacher_spec {{ws}}/t.yaml",
         "--kd_weight must be in [0, 1)", damage=write("t.yaml", "zoo_zip: x.zip\n")),
    Case("run_kd_opts_not_key_value", "al_run", f"{RUN} --kd_opts temperature",
         "'temperature' is not KEY=VALUE"),
    Case("run_kd_opts_zero_temperature", "al_run", f"{RUN} --kd_opts temperature=0",
         "--kd_opts: temperature must be a positive number"),
    Case("run_kd_opts_unknown_option", "al_run", f"{RUN} --kd_opts temprature=2",
         "'temprature'"),
    # al_score
    Case("score_unknown_strategy", "al_score", f"{SCORE} --strategy nope", "'nope'"),
    Case("score_missing_pool", "al_score", f"{SCORE} --data_dir {{ws}}/nope", "{ws}/nope"),
    Case("score_pool_without_wav_scp", "al_score", f"{SCORE} --data_dir {{ws}}/pool",
         "{ws}/pool/wav.scp", damage=copy_dir("data/dev_clean", "pool", ["wav.scp"])),
    Case("score_missing_audio", "al_score", SCORE, damage=missing_audio),
    Case("score_8k_audio", "al_score", SCORE, damage=scp_audio(resampled(rate=8000))),
    Case("score_key_file_out_of_order", "al_score", f"{SCORE} --key_file {{ws}}/keys",
         damage=keys([2, 0])),
    Case("score_missing_key_file", "al_score", f"{SCORE} --key_file {{ws}}/keys", "{ws}/keys"),
    Case("score_unknown_key", "al_score", f"{SCORE} --key_file {{ws}}/keys", "{ws}/keys",
         damage=write("keys", "nobody\n")),
    Case("score_missing_config", "al_score", SCORE, "{ws}/exp/config.yaml",
         damage=lambda ws: (ws / "exp/config.yaml").unlink()),
    Case("score_truncated_checkpoint", "al_score", SCORE,
         damage=truncated(lambda ws: ws / "exp/model.pth")),
    Case("score_checkpoint_of_another_model", "al_score", SCORE, damage=broken_state),
    Case("score_lp_key_typo", "al_score", SCORE,
         damage=config_set(["model_conf", "lp_decoder_conf", "hiden"], 8, "'hiden'")),
    Case("score_true_loss_without_flag", "al_score", f"{SCORE} --strategy true_loss",
         "--use_transcripts"),
    Case("score_true_loss_without_text", "al_score",
         f"{SCORE} --strategy true_loss --use_transcripts true --data_dir {{ws}}/notext",
         "{ws}/notext/text", damage=copy_dir("data/dev_clean", "notext", ["text"])),
    Case("score_job_0", "al_score", f"{SCORE} --job 0", "--job must be >= 1"),
    Case("score_negative_batch", "al_score", f"{SCORE} --batch_size -2", "--batch_size"),
    Case("score_beam_0", "al_score", f"{SCORE} --strategy least_confidence --beam_size 0",
         "--beam_size"),
    Case("score_ctc_weight_2", "al_score", f"{SCORE} --ctc_weight 2", "--ctc_weight"),
    Case("score_output_is_a_file", "al_score", f"{SCORE} --output_dir {{ws}}/tokens/tokens.txt",
         "{ws}/tokens/tokens.txt", output="{ws}/tokens"),
    # lp_refit
    Case("refit_missing_config", "lp_refit", REFIT, "{ws}/exp/config.yaml",
         damage=lambda ws: (ws / "exp/config.yaml").unlink()),
    Case("refit_truncated_checkpoint", "lp_refit", REFIT,
         damage=truncated(lambda ws: ws / "exp/model.pth")),
    Case("refit_checkpoint_of_another_model", "lp_refit", REFIT, damage=broken_state),
    Case("refit_missing_data_dir", "lp_refit", f"{REFIT} --data_dir {{ws}}/nope", "{ws}/nope"),
    Case("refit_data_without_text", "lp_refit", f"{REFIT} --data_dir {{ws}}/notext",
         "{ws}/notext/text", damage=copy_dir("data/dev_clean", "notext", ["text"])),
    Case("refit_missing_audio", "lp_refit", REFIT, damage=missing_audio),
    Case("refit_stereo_audio", "lp_refit", REFIT, damage=scp_audio(resampled(stereo=True))),
    Case("refit_transcripts_of_another_corpus", "lp_refit",
         f"{REFIT} --data_dir {DATA}/zh_train", "become <unk>"),
    Case("refit_steps_0", "lp_refit", f"{REFIT} --steps 0", "--steps"),
    Case("refit_negative_lr", "lp_refit", f"{REFIT} --lr -1", "--lr must be a positive"),
    Case("refit_batch_0", "lp_refit", f"{REFIT} --batch_size 0", "--batch_size"),
    Case("refit_valid_fraction_1", "lp_refit", f"{REFIT} --valid_fraction 1",
         "--valid_fraction"),
    Case("refit_unknown_loss", "lp_refit", f"{REFIT} --loss ranking", "'ranking'"),
    Case("refit_output_is_the_model", "lp_refit",
         f"{REFIT} --output_file {{ws}}/exp/model.pth", "would overwrite the model",
         output="{ws}/exp"),
    Case("refit_output_is_a_directory", "lp_refit", f"{REFIT} --output_file {DATA}",
         "{ws}/data: is a directory", output=DATA),
    # al_report
    Case("report_missing_al_dir", "al_report", f"{REPORT} --al_dir {{ws}}/nope", "{ws}/nope"),
    Case("report_no_metrics", "al_report", f"{REPORT} --al_dir {DATA}", "no metrics.json"),
    Case("report_unknown_set", "al_report", f"{REPORT} --sets dev_other", "'dev_other'"),
    Case("report_unknown_metric", "al_report", f"{REPORT} --metric bleu", "'bleu'"),
    Case("report_unknown_baseline", "al_report", f"{REPORT} --baseline rnadom", "'rnadom'"),
    Case("report_malformed_metrics", "al_report", REPORT,
         damage=lambda ws: write_raw(METRICS.format(ws=ws), "{")),
    Case("report_metrics_not_an_object", "al_report", REPORT,
         damage=write("al/random/round1/metrics.json", "[]", METRICS)),
    Case("report_negative_wer", "al_report", REPORT, damage=edit_metrics(wer=-0.1)),
    Case("report_wer_as_text", "al_report", REPORT, damage=edit_metrics(wer="nan")),
    Case("report_duplicate_round", "al_report", REPORT, "duplicate",
         damage=lambda ws: shutil.copytree(ws / "al/random", ws / "al/copy")),
    Case("report_output_is_a_file", "al_report",
         f"{REPORT} --output_dir {{ws}}/tokens/tokens.txt", "{ws}/tokens/tokens.txt",
         output="{ws}/tokens"),
    # launch
    Case("launch_no_command", "launch", "{ws}/out/x.log", "'--'"),
    Case("launch_empty_command", "launch", "{ws}/out/x.log --", "no command"),
    Case("launch_empty_range", "launch", "JOB=1:0 {ws}/out/x.JOB.log -- true", "JOB=1:0"),
    Case("launch_range_not_numbers", "launch", "JOB=a:2 {ws}/out/x.JOB.log -- true", "JOB=a:2"),
    Case("launch_jobs_share_a_log", "launch", "JOB=1:2 {ws}/out/x.log -- true", "need JOB"),
    Case("launch_two_logs", "launch", "{ws}/out/a.log {ws}/out/b.log -- true",
         "expected one log path"),
    Case("launch_unknown_backend", "launch", "--backend pbs {ws}/out/x.log -- true", "'pbs'"),
    Case("launch_negative_max_parallel", "launch", "--max_parallel -1 {ws}/out/x.log -- true",
         "--max_parallel"),
    Case("launch_bad_slurm_opts", "launch",
         "--backend slurm --slurm_opts \"'x\" {ws}/out/x.log -- true", "slurm_opts"),
    Case("launch_command_not_found", "launch", "{ws}/out/x.log -- /nonexistent/cmd",
         "/nonexistent/cmd: command not found"),
    Case("launch_log_is_a_directory", "launch", f"{DATA}/dev_clean -- true",
         "{ws}/data/dev_clean: is a directory", output=f"{DATA}/dev_clean"),
    Case("launch_log_under_a_file", "launch", "{ws}/tokens/tokens.txt/x.log -- true",
         "x.log: not found (a parent is not a directory)", output="{ws}/tokens"),
    # al_annotate (the AL dir waits for random round 0's transcripts)
    Case("annotate_missing_input", "al_annotate", f"{ANNOTATE} --input {{ws}}/nope.tsv",
         "{ws}/nope.tsv", output="{ws}/ann"),
    Case("annotate_round_without_export", "al_annotate",
         "import --al_dir {ws}/ann --strategy random --round 5 --input {ws}/x.tsv",
         "no export for this round", output="{ws}/ann", damage=write("x.tsv", "\n")),
    Case("annotate_missing_al_dir", "al_annotate",
         "import --al_dir {ws}/nope --strategy random --round 0 --input {ws}/x.tsv",
         "{ws}/nope", output="{ws}/ann", damage=write("x.tsv", "\n")),
    Case("annotate_unknown_format", "al_annotate", f"{ANNOTATE} --input {{ws}}/x.tsv "
         "--format csv", "'csv'", output="{ws}/ann"),
    Case("annotate_oov_map_without_file", "al_annotate",
         f"{ANNOTATE} --input {{ws}}/x.tsv --oov map", "--oov_map", output="{ws}/ann",
         damage=write("x.tsv", "\n")),
    Case("annotate_empty_input", "al_annotate", f"{ANNOTATE} --input {{ws}}/x.tsv",
         "{ws}/x.tsv", output="{ws}/ann", damage=write("x.tsv", "")),
    Case("annotate_json_not_tasks", "al_annotate", f"{ANNOTATE} --input {{ws}}/x.json",
         "{ws}/x.json", output="{ws}/ann", damage=lambda ws: write_raw(ws / "x.json", "{}")),
    Case("annotate_input_not_utf8", "al_annotate", f"{ANNOTATE} --input {{ws}}/x.tsv",
         "{ws}/x.tsv", output="{ws}/ann",
         damage=lambda ws: (ws / "x.tsv").write_bytes(b"utt\t\xff\xfe\n")),
    # a tab typed inside a transcript would cut it short at the tab
    Case("annotate_tsv_tab_inside_transcript", "al_annotate", f"{ANNOTATE} --input "
         "{ws}/filled.tsv", "", output="{ws}/ann", damage=filled_tsv("HELLO\tWORLD")),
    # an unbalanced quote would swallow the rows after it into one cell
    Case("annotate_tsv_unbalanced_quote", "al_annotate", f"{ANNOTATE} --input "
         "{ws}/filled.tsv", "", output="{ws}/ann", damage=filled_tsv('"HELLO WORLD')),
    # Label Studio exports of another shape: one clear line, never a traceback
    Case("annotate_json_result_not_a_list", "al_annotate", f"{ANNOTATE} --input "
         "{ws}/export.json", "", output="{ws}/ann", damage=label_studio_export("HELLO")),
    Case("annotate_json_transcript_a_number", "al_annotate", f"{ANNOTATE} --input "
         "{ws}/export.json", "", output="{ws}/ann", damage=label_studio_export(
             [{"from_name": "transcription", "type": "textarea", "value": {"text": 123}}])),
    # the TextArea renamed in Label Studio's labeling interface: not "empty transcript"
    Case("annotate_json_textarea_renamed", "al_annotate", f"{ANNOTATE} --input "
         "{ws}/export.json", "{ws}/export.json: task 1 annotation 1: a transcript in the "
         "TextArea 'transcript'", output="{ws}/ann", damage=label_studio_export(
             [{"from_name": "transcript", "type": "textarea", "value": {"text": ["HELLO"]}}])),
    Case("annotate_oov_map_missing", "al_annotate",
         f"{ANNOTATE} --input {{ws}}/x.tsv --oov map --oov_map {{ws}}/nope.map",
         "{ws}/nope.map: --oov_map not found", output="{ws}/ann", damage=write("x.tsv", "\n")),
    Case("annotate_export_unknown_round", "al_annotate",
         "export --al_dir {ws}/ann --strategy loss_prediction --round 0",
         "no export for this round", output="{ws}/ann"),
]

if not __import__("torch").cuda.is_available():  # a GPU machine accepts these
    AL_CASES += [
        Case("score_ngpu_without_cuda", "al_score", f"{SCORE} --ngpu 1", "no CUDA device"),
        Case("refit_ngpu_without_cuda", "lp_refit", f"{REFIT} --ngpu 1", "no CUDA device"),
    ]


# ---- the workspace ----------------------------------------------------------------------------
def _metrics(strategy: str, r: int, wer: float) -> dict:
    return {"strategy": strategy, "seed": 0, "round": r, "labeled_utterances": 8 + 6 * r,
            "labeled_hours": 0.01 * (r + 1), "simulation_only": False,
            "decode": {"dev_clean": {"wer": wer, "cer": wer / 2, "utterances": 12}}}


def write_metrics(al: Path) -> None:
    """Two strategies, two rounds each: what al_report reads."""
    for strategy, wers in (("random", (0.9, 0.8)), ("loss_prediction", (0.9, 0.7))):
        for r, wer in enumerate(wers):
            path = al / strategy / f"round{r}" / "metrics.json"
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps(_metrics(strategy, r, wer)))


@pytest.fixture(scope="module")
def al_base(model_base, made, tmp_path_factory):  # noqa: F811
    """The model workspace, plus round metrics (``al/``) and an AL dir waiting for the
    annotation of random round 0 (``ann/``)."""
    ws = _copy(model_base, tmp_path_factory.mktemp("bad_inputs_al").resolve())
    write_metrics(ws / "al")
    shutil.copytree(made[0] / "al", ws / "ann", symlinks=True)
    return ws


def test_the_al_table_covers_every_al_cli():
    counts = {cli: sum(c.cli == cli for c in AL_CASES) for cli in
              ("al_run", "al_score", "lp_refit", "al_report", "launch", "al_annotate")}
    assert min(counts.values()) >= 8, counts
    assert len({c.id for c in AL_CASES}) == len(AL_CASES)


@pytest.mark.parametrize("case", AL_CASES, ids=[c.id for c in AL_CASES])
def test_bad_al_input(case, al_base, tmp_path, capsys, caplog, monkeypatch):
    check(case, _copy(al_base, tmp_path / "ws"), capsys, caplog, monkeypatch)


@pytest.mark.parametrize("case_id", ["run_budget_beyond_pool", "launch_range_not_numbers"])
def test_bad_al_input_as_a_real_process(case_id, al_base, tmp_path):
    """As a user runs it: exit status 1, and stderr is log lines only (no traceback)."""
    case = next(c for c in AL_CASES if c.id == case_id)
    ws = _copy(al_base, tmp_path / "ws")
    proc = python("-m", f"espnet_lp.bin.{case.cli}", *shlex.split(case.args.format(ws=ws)))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert case.names.format(ws=ws) in proc.stderr
    assert not (ws / "out").exists()
