"""Bad input, as a new user makes it, fed to every data and model CLI.

Each row of :data:`CASES` names a CLI, its command line, what the user got wrong (done to a
fresh copy of a small workspace: a corpus, data dirs, a token list, a tiny model), what the
report must name, and the output location. Every row must exit non-zero, print no traceback,
name the offending file/line/utterance/option, and leave the output location as it was.
"""

import importlib
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest
import soundfile

from espnet_lp.data.asr_inputs import build_char_token_list, write_token_list
from espnet_lp.data.datadir import DataDir
from tests.io_helpers import make_tiny_exp, python, run_cli, snapshot

PREP = "--corpus_dir {ws}/corpus --output_dir {ws}/data"
EXP = "--asr_train_config {ws}/exp/config.yaml --asr_model_file {ws}/exp/model.pth"
DEV = "{ws}/data/dev_clean"
DEV_SCP = "--data_path_and_name_and_type {ws}/data/dev_clean/wav.scp,speech,sound"


@dataclass(frozen=True)
class Case:
    """One bad input.

    Args:
        id: Test id.
        cli: Module under ``espnet_lp.bin``.
        args: Command line; ``{ws}`` is the workspace.
        names: What the report must contain (``{ws}`` formatted), unless ``damage`` returns it.
        output: The output location that must stay unchanged.
        damage: What the user got wrong, done to the workspace; may return the text (file,
            ``file:line``, utterance) the report must name.
    """

    id: str
    cli: str
    args: str
    names: str = ""
    output: str = "{ws}/out"
    damage: Optional[Callable[[Path], Optional[str]]] = None


# ---- damage -------------------------------------------------------------------------------
def flac(ws: Path, subset: str = "dev-clean", i: int = 0) -> Path:
    return sorted((ws / "corpus/LibriSpeech" / subset).glob("*/*/*.flac"))[i]


def wav(ws: Path, split: str = "train", i: int = 0) -> Path:
    return sorted((ws / "corpus/data_aishell/wav" / split).glob("*/*.wav"))[i]


def _flac_cli(*args: str, stdin: bytes = b"") -> bytes:
    if shutil.which("flac") is None:
        pytest.skip("flac command not installed")
    raw = ["--force-raw-format", "--endian=little", "--sign=signed", "--channels=1",
           "--bps=16", "--sample-rate=16000"]
    return subprocess.run(["flac", "-s", "-c", *raw, *args, "-"], input=stdin,
                          capture_output=True, check=True).stdout


def garbage(path_of):
    def damage(ws):
        path = path_of(ws)
        path.write_bytes(b"not audio at all " * 40)
        return str(path)
    return damage


def truncated(path_of):
    def damage(ws):
        path = path_of(ws)
        path.write_bytes(path.read_bytes()[:3000])
        return str(path)
    return damage


def piped_flac(ws):
    """A valid FLAC written through a pipe: no sample count in its header."""
    path = flac(ws)
    pcm = soundfile.read(str(path), dtype="int16")[0].tobytes()
    path.write_bytes(_flac_cli(stdin=pcm))
    return str(path)


def empty_flac(ws):
    path = flac(ws)
    path.write_bytes(_flac_cli())
    return str(path)


def rewrite_wav(**kw):
    def damage(ws):
        path = wav(ws)
        n = kw.get("rate", 16000)
        data = np.zeros((n, 2) if kw.get("stereo") else n, dtype=np.int16)
        soundfile.write(str(path), data, n, subtype="PCM_16")
        return str(path)
    return damage


def remove(path_of):
    def damage(ws):
        path = path_of(ws)
        path.unlink()
        return path.stem
    return damage


def symlink_loop(path_of):
    def damage(ws):
        path = path_of(ws)
        path.unlink()
        other = path.with_name("loop." + path.name)
        other.symlink_to(path)
        path.symlink_to(other)
        return "symlink loop"
    return damage


def edit_line(path_of, lineno: int, new: bytes):
    """Replace line ``lineno`` (1-based) of a file; the report must name ``file:line``."""
    def damage(ws):
        path = Path(str(path_of(ws)).format(ws=ws))
        lines = path.read_bytes().splitlines(keepends=True)
        lines[lineno - 1] = new
        path.write_bytes(b"".join(lines))
        return f"{path}:{lineno}"
    return damage


def trans(ws):
    return next(flac(ws).parent.glob("*.trans.txt"))


def aishell_trans(ws):
    return ws / "corpus/data_aishell/transcript/aishell_transcript_v0.8.txt"


def write(rel: str, text: str, names: Optional[str] = None):
    def damage(ws):
        path = ws / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.format(ws=ws), encoding="utf-8")
        return None if names is None else names.format(ws=ws)
    return damage


def copy_dir(src: str, dst: str, drop=(), then=None):
    def damage(ws):
        shutil.copytree(ws / src, ws / dst)
        for name in drop:
            (ws / dst / name).unlink()
        return then(ws) if then else None
    return damage


def swap_lines(path: Path, a: int, b: int) -> str:
    """Swap two lines (1-based; -1 the last) of a file; the report must name the file."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    i, j = (n - 1 if n > 0 else len(lines) + n for n in (a, b))
    lines[i], lines[j] = lines[j], lines[i]
    path.write_text("".join(lines), encoding="utf-8")
    return str(path)


def wav_scp_line(ws, lineno=1):
    return (ws / "data/dev_clean/wav.scp").read_text().splitlines()[lineno - 1].split()


def missing_audio(ws):
    utt, path = wav_scp_line(ws)
    Path(path).unlink()
    return utt


def scp_audio(change):
    """Damage the audio of wav.scp's first line (``change(path)``); the report must name
    ``wav.scp:1``."""
    def damage(ws):
        change(Path(wav_scp_line(ws)[1]))
        return f"{ws}/data/dev_clean/wav.scp:1"
    return damage


def resampled(rate: int = 16000, stereo: bool = False):
    def change(path):
        data, _ = soundfile.read(str(path), dtype="int16")
        soundfile.write(str(path), np.stack([data, data], 1) if stereo else data[::2], rate,
                        subtype="PCM_16")
    return change


def scp_pipe(ws):
    """A Kaldi pipe (``cmd |``), which ESPnet's ``sound`` reader cannot run."""
    utt, path = wav_scp_line(ws)
    return edit_line(lambda ws: ws / "data/dev_clean/wav.scp", 1,
                     f"{utt} flac -dcs {path} |\n".encode())(ws)


def keys(order):
    """A key file holding wav.scp's ids in ``order`` (indices); the report names its line."""
    def damage(ws):
        ids = [line.split()[0] for line in
               (ws / "data/dev_clean/wav.scp").read_text().splitlines()]
        (ws / "keys").write_text("".join(ids[i] + "\n" for i in order))
        return f"{ws}/keys:{len(order)}"
    return damage


def broken_state(ws):
    import torch

    state = torch.load(ws / "exp/model.pth", map_location="cpu")
    key = next(k for k in state if k.endswith("weight") and state[k].dim() == 2)
    state[key] = torch.zeros(state[key].shape[0] + 1, state[key].shape[1])
    torch.save(state, ws / "exp/model.pth")
    return "does not fit"


def config_set(keys, value, names: str, **more):
    """Set a (nested) key of the exp's config.yaml (and ``more`` keys beside it), as a user
    editing it would."""
    def damage(ws):
        import yaml

        path = ws / "exp/config.yaml"
        config = yaml.safe_load(path.read_text())
        node = config
        for key in keys[:-1]:
            if node.get(key) is None:
                node[key] = {}
            node = node[key]
        node.update({keys[-1]: value, **more})
        path.write_text(yaml.safe_dump(config))
        return names
    return damage


def fake_cache(ws):
    (ws / "out/data").mkdir(parents=True)
    (ws / "out/meta.json").write_text('{"format": 1, "topk": 3}\n')
    (ws / "out/data/u.npz").write_bytes(b"x")
    return "meta.json"


# ---- the table ------------------------------------------------------------------------------
CASES = [
    # prepare_data: audio (the output, data/, already holds good data dirs)
    Case("prep_garbage_flac", "prepare_data", f"--corpus librispeech {PREP} --subsets dev-clean",
         output="{ws}/data", damage=garbage(flac)),
    Case("prep_truncated_flac_header_check", "prepare_data",
         f"--corpus librispeech {PREP} --subsets dev-clean --audio_check header",
         output="{ws}/data", damage=truncated(flac)),
    Case("prep_piped_flac", "prepare_data", f"--corpus librispeech {PREP} --subsets dev-clean",
         output="{ws}/data", damage=piped_flac),
    Case("prep_piped_flac_header_check", "prepare_data",
         f"--corpus librispeech {PREP} --subsets dev-clean --audio_check header",
         output="{ws}/data", damage=piped_flac),
    Case("prep_subset_twice", "prepare_data",
         f"--corpus librispeech {PREP} --subsets dev-clean dev-clean", output="{ws}/data",
         names="dev-clean given twice"),
    Case("prep_zero_sample_flac_header_check", "prepare_data",
         f"--corpus librispeech {PREP} --subsets dev-clean --audio_check header",
         output="{ws}/data", damage=empty_flac),
    Case("prep_stereo_wav", "prepare_data",
         f"--corpus aishell {PREP} --subsets train --on_unmatched skip", output="{ws}/data",
         damage=rewrite_wav(stereo=True)),
    Case("prep_8k_wav_header_check", "prepare_data",
         f"--corpus aishell {PREP} --subsets train --on_unmatched skip --audio_check header",
         output="{ws}/data", damage=rewrite_wav(rate=8000)),
    Case("prep_truncated_wav_header_check", "prepare_data",
         f"--corpus aishell {PREP} --subsets train --on_unmatched skip --audio_check header",
         output="{ws}/data", damage=truncated(wav)),
    Case("prep_symlink_loop_audio", "prepare_data",
         f"--corpus librispeech {PREP} --subsets dev-clean", output="{ws}/data",
         damage=symlink_loop(flac)),
    Case("prep_transcript_without_audio", "prepare_data",
         f"--corpus librispeech {PREP} --subsets dev-clean", output="{ws}/data",
         damage=remove(flac)),
    Case("prep_non_utf8_transcript", "prepare_data",
         f"--corpus aishell {PREP} --subsets train --on_unmatched skip", output="{ws}/data",
         damage=edit_line(aishell_trans, 2, b"BAC009S0002W0122 caf\xe9\n")),
    Case("prep_non_utf8_transcript_skip_needs_on_unmatched", "prepare_data",
         f"--corpus aishell {PREP} --subsets train --on_bad skip", output="{ws}/data",
         damage=edit_line(aishell_trans, 2, b"BAC009S0002W0122 caf\xe9\n"),
         names="audio_without_transcript"),
    Case("prep_empty_transcript", "prepare_data",
         f"--corpus librispeech {PREP} --subsets dev-clean", output="{ws}/data",
         damage=lambda ws: edit_line(trans, 1, flac(ws).stem.encode() + b"\n")(ws)),
    Case("prep_duplicate_id", "prepare_data",
         f"--corpus aishell {PREP} --subsets train --on_unmatched skip --on_bad skip",
         output="{ws}/data",
         damage=lambda ws: edit_line(aishell_trans, 2,
                                     aishell_trans(ws).read_bytes().splitlines(True)[0])(ws)),
    Case("prep_misnamed_audio", "prepare_data",
         f"--corpus librispeech {PREP} --subsets dev-clean", output="{ws}/data",
         damage=lambda ws: str(flac(ws).rename(flac(ws).with_name("12-34-0000.flac")))),
    Case("prep_unknown_subset", "prepare_data", f"--corpus librispeech {PREP} --subsets dev-cleen",
         names="dev-cleen", output="{ws}/data"),
    Case("prep_missing_corpus", "prepare_data",
         "--corpus librispeech --corpus_dir {ws}/nope --output_dir {ws}/data --subsets dev-clean",
         names="{ws}/nope", output="{ws}/data"),
    Case("prep_corpus_is_a_file", "prepare_data",
         "--corpus aishell --corpus_dir {ws}/tokens/tokens.txt --output_dir {ws}/data "
         "--subsets dev", names="{ws}/tokens/tokens.txt", output="{ws}/data"),
    Case("prep_num_jobs_0", "prepare_data",
         f"--corpus librispeech {PREP} --subsets dev-clean --num_jobs 0", names="--num_jobs",
         output="{ws}/data"),
    Case("prep_sample_rate_text", "prepare_data",
         f"--corpus librispeech {PREP} --subsets dev-clean --sample_rate 16k",
         names="--sample_rate", output="{ws}/data"),
    Case("prep_bad_policy", "prepare_data",
         f"--corpus librispeech {PREP} --subsets dev-clean --on_bad ignore", names="--on_bad",
         output="{ws}/data"),
    Case("prep_wrong_rate_for_corpus", "prepare_data",
         f"--corpus librispeech {PREP} --subsets dev-clean --sample_rate 8000",
         names="expected 8000 Hz", output="{ws}/data"),
    # combine_data_dirs
    Case("combine_source_without_text", "combine_data_dirs",
         "{ws}/out {ws}/data/train_clean_100 {ws}/notext", names="{ws}/notext: no text",
         damage=copy_dir("data/dev_clean", "notext", drop=["text"])),
    Case("combine_missing_source", "combine_data_dirs", "{ws}/out {ws}/data/train_clean_100 "
         "{ws}/data/nope", names="{ws}/data/nope"),
    Case("combine_same_source_twice", "combine_data_dirs", f"{{ws}}/out {DEV} {DEV}",
         names="occur twice"),
    Case("combine_unsorted_source", "combine_data_dirs", "{ws}/out {ws}/data/train_clean_100 "
         "{ws}/bad", damage=copy_dir("data/dev_clean", "bad", then=lambda ws: (
             ws / "bad/utt2spk").write_text("".join(reversed(
                 (ws / "bad/utt2spk").read_text().splitlines(True)))) and None),
         names="{ws}/bad"),
    Case("combine_wav_scp_line_without_path", "combine_data_dirs", f"{{ws}}/out {DEV}",
         damage=edit_line(lambda ws: ws / "data/dev_clean/wav.scp", 3, b"onlyanid\n")),
    Case("combine_non_utf8_text", "combine_data_dirs", f"{{ws}}/out {DEV}",
         damage=lambda ws: edit_line(lambda w: w / "data/dev_clean/text", 2,
                                     wav_scp_line(ws, 2)[0].encode() + b" \xff\xfe\n")(ws)),
    Case("combine_missing_untranscribed", "combine_data_dirs",
         f"{{ws}}/out {DEV} --untranscribed {{ws}}/pool", names="{ws}/pool"),
    Case("combine_text_of_unknown_utterance", "combine_data_dirs", f"{{ws}}/out {DEV}",
         damage=edit_line(lambda ws: ws / "data/dev_clean/text", 1, b"0000-0000-0000 HELLO\n"),
         names="0000-0000-0000"),
    # subset_data_dir
    Case("subset_negative_utterances", "subset_data_dir", f"--utterances -3 {DEV} {{ws}}/out",
         names="utterances must be positive, got -3"),
    Case("subset_too_many_utterances", "subset_data_dir", f"--utterances 1000 {DEV} {{ws}}/out",
         names="only 12 available"),
    Case("subset_zero_hours", "subset_data_dir", f"--hours 0 {DEV} {{ws}}/out",
         names="hours must be positive"),
    Case("subset_two_criteria", "subset_data_dir", f"--utterances 3 --hours 1 {DEV} {{ws}}/out",
         names="not both"),
    Case("subset_missing_list", "subset_data_dir", f"--utt_list {{ws}}/ids {DEV} {{ws}}/out",
         names="{ws}/ids"),
    Case("subset_unknown_id_in_list", "subset_data_dir", f"--utt_list {{ws}}/ids {DEV} {{ws}}/out",
         damage=write("ids", "9999-1-0001\n", "{ws}/ids"), names="9999-1-0001"),
    Case("subset_list_and_count", "subset_data_dir",
         f"--spk_list {{ws}}/spk --utterances 3 {DEV} {{ws}}/out",
         damage=write("spk", "x\n"), names="cannot be combined"),
    Case("subset_missing_source", "subset_data_dir", "--utterances 3 {ws}/nope {ws}/out",
         names="{ws}/nope"),
    Case("subset_empty_source", "subset_data_dir", "--utterances 3 {ws}/empty {ws}/out",
         damage=lambda ws: [write(f"empty/{n}", "")(ws) for n in
                            ("wav.scp", "utt2spk", "spk2utt", "text")] and None,
         names="no utterances"),
    Case("subset_utterances_text", "subset_data_dir", f"--utterances ten {DEV} {{ws}}/out",
         names="--utterances"),
    Case("subset_hours_without_utt2dur", "subset_data_dir", "--hours 1 {ws}/nodur {ws}/out",
         damage=copy_dir("data/dev_clean", "nodur", drop=["utt2dur"]), names="utt2dur"),
    Case("subset_symlink_loop_wav_scp", "subset_data_dir", f"--utterances 3 {DEV} {{ws}}/out",
         damage=symlink_loop(lambda ws: ws / "data/dev_clean/wav.scp")),
    # validate_data_dir (the data dir is the "output" that must not change)
    Case("validate_empty", "validate_data_dir", "{ws}/empty", output="{ws}/empty",
         damage=lambda ws: [write(f"empty/{n}", "")(ws) for n in
                            ("wav.scp", "utt2spk", "spk2utt", "text")] and None,
         names="no utterances"),
    Case("validate_missing_audio", "validate_data_dir", DEV, output=DEV, damage=missing_audio),
    Case("validate_symlink_loop_audio", "validate_data_dir", DEV, output=DEV,
         damage=lambda ws: symlink_loop(lambda w: Path(wav_scp_line(w)[1]))(ws)),
    Case("validate_duplicate_key", "validate_data_dir", DEV, output=DEV,
         damage=lambda ws: edit_line(lambda w: w / "data/dev_clean/utt2dur", 2, (
             ws / "data/dev_clean/utt2dur").read_bytes().splitlines(True)[0])(ws)),
    Case("validate_spk2utt_mismatch", "validate_data_dir", DEV, output=DEV,
         damage=edit_line(lambda ws: ws / "data/dev_clean/spk2utt", 1, b"nobody x\n"),
         names="spk2utt"),
    Case("validate_empty_transcript", "validate_data_dir", DEV, output=DEV,
         damage=lambda ws: edit_line(lambda w: w / "data/dev_clean/text", 1,
                                     wav_scp_line(ws)[0].encode() + b"\n")(ws)),
    Case("validate_negative_duration", "validate_data_dir", DEV, output=DEV,
         damage=lambda ws: edit_line(lambda w: w / "data/dev_clean/utt2dur", 1,
                                     wav_scp_line(ws)[0].encode() + b" -1\n")(ws)),
    Case("validate_infinite_duration", "validate_data_dir", DEV, output=DEV,
         damage=lambda ws: edit_line(lambda w: w / "data/dev_clean/utt2dur", 2,
                                     wav_scp_line(ws, 2)[0].encode() + b" inf\n")(ws)),
    Case("inputs_infinite_duration", "make_asr_inputs",
         f"--token_list_dir {{ws}}/tokens --shape_dir {{ws}}/out {DEV}",
         damage=lambda ws: edit_line(lambda w: w / "data/dev_clean/utt2dur", 2,
                                     wav_scp_line(ws, 2)[0].encode() + b" inf\n")(ws)),
    Case("validate_missing_dir", "validate_data_dir", "{ws}/nope", output="{ws}/nope",
         names="{ws}/nope"),
    # split_scp
    Case("split_missing_scp", "split_scp", "--nj 2 {ws}/nope.scp {ws}/out",
         names="{ws}/nope.scp"),
    Case("split_more_shards_than_lines", "split_scp", "--nj 50 {ws}/data/dev_clean/wav.scp "
         "{ws}/out", names="cannot fill 50 shards"),
    Case("split_nj_0", "split_scp", "--nj 0 {ws}/data/dev_clean/wav.scp {ws}/out",
         names="--nj"),
    Case("split_non_utf8", "split_scp", "--nj 2 {ws}/data/dev_clean/wav.scp {ws}/out",
         damage=edit_line(lambda ws: ws / "data/dev_clean/wav.scp", 4, b"u \xff\n")),
    Case("split_empty_line", "split_scp", "--nj 2 {ws}/data/dev_clean/wav.scp {ws}/out",
         damage=edit_line(lambda ws: ws / "data/dev_clean/wav.scp", 5, b"\n")),
    Case("split_same_output_twice", "split_scp",
         "{ws}/data/dev_clean/wav.scp {ws}/out/k {ws}/out/k", names="named twice"),
    # outputs that name the wrong kind of thing, or an input (replacing it would lose data)
    Case("split_output_is_a_directory", "split_scp", "{ws}/data/dev_clean/wav.scp {ws}/out/keys",
         damage=write("out/keys/notes.txt", "mine\n"), names="{ws}/out/keys: is a directory"),
    Case("split_output_onto_its_input", "split_scp",
         "{ws}/data/dev_clean/wav.scp {ws}/data/dev_clean/wav.scp {ws}/out/k2",
         output=DEV, names="is also an input"),
    Case("split_output_dir_is_a_file", "split_scp", "--nj 2 {ws}/data/dev_clean/wav.scp {ws}/out",
         damage=write("out", "mine\n"), names="{ws}/out is a file"),
    Case("subset_output_is_a_file", "subset_data_dir", f"--utterances 3 {DEV} {{ws}}/out",
         damage=write("out", "mine\n"), names="{ws}/out: exists and is not a directory"),
    Case("subset_output_under_a_file", "subset_data_dir", f"--utterances 3 {DEV} {{ws}}/out/sub",
         damage=write("out", "mine\n"), names="{ws}/out is a file"),
    Case("subset_onto_its_source", "subset_data_dir", f"--utterances 3 {DEV} {DEV}", output=DEV,
         names="is also an input"),
    Case("subset_negative_seed", "subset_data_dir", f"--seed -1 --utterances 3 {DEV} {{ws}}/out",
         names="--seed"),
    Case("subset_exclude_ids_of_the_wrong_kind", "subset_data_dir",
         f"--spk_list {{ws}}/ids --exclude {DEV} {{ws}}/out",
         damage=lambda ws: write("ids", wav_scp_line(ws, 1)[0] + "\n")(ws),
         names="speaker ids not in"),
    Case("combine_output_is_a_file", "combine_data_dirs", f"{{ws}}/out {DEV}",
         damage=write("out", "mine\n"), names="{ws}/out: exists and is not a directory"),
    Case("combine_onto_a_source", "combine_data_dirs", f"{DEV} {DEV}", output=DEV,
         names="is also an input"),
    Case("inputs_tokens_txt_is_a_directory", "make_asr_inputs",
         f"--token_list_from {DEV} --token_list_dir {{ws}}/out",
         damage=write("out/tokens.txt/notes.txt", "mine\n"), names="is a directory"),
    # make_asr_inputs
    Case("inputs_token_list_of_another_corpus", "make_asr_inputs",
         f"--token_list_dir {{ws}}/zh_tokens --shape_dir {{ws}}/out {DEV}", output="{ws}/out",
         damage=lambda ws: write_token_list(ws / "zh_tokens/tokens.txt", build_char_token_list(
             DataDir.read(ws / "data/zh_train").text.values())), names="100.0%"),
    Case("inputs_shapes_without_shape_dir", "make_asr_inputs",
         f"--token_list_dir {{ws}}/tokens {DEV}", output="{ws}/tokens", names="--shape_dir"),
    Case("inputs_tokens_from_untranscribed", "make_asr_inputs",
         "--token_list_from {ws}/notext --token_list_dir {ws}/out",
         damage=copy_dir("data/dev_clean", "notext", drop=["text"]), names="{ws}/notext"),
    Case("inputs_no_token_list", "make_asr_inputs",
         f"--token_list_dir {{ws}}/out --shape_dir {{ws}}/shapes {DEV}",
         names="{ws}/out/tokens.txt"),
    Case("inputs_token_list_without_unk", "make_asr_inputs",
         f"--token_list_dir {{ws}}/tokens --shape_dir {{ws}}/out {DEV}",
         damage=edit_line(lambda ws: ws / "tokens/tokens.txt", 2, b"QQ\n"),
         names="no <unk>"),
    # ESPnet reads the blank and <sos/eos> by position (a `sort`ed list moves them)
    Case("inputs_token_list_blank_not_first", "make_asr_inputs",
         f"--token_list_dir {{ws}}/tokens --shape_dir {{ws}}/out {DEV}",
         damage=lambda ws: swap_lines(ws / "tokens/tokens.txt", 1, 3), names="must be line 1"),
    Case("inputs_token_list_sos_eos_not_last", "make_asr_inputs",
         f"--token_list_dir {{ws}}/tokens --shape_dir {{ws}}/out {DEV}",
         damage=lambda ws: swap_lines(ws / "tokens/tokens.txt", -1, 3),
         names="must be the last line"),
    Case("inputs_duplicate_token", "make_asr_inputs",
         f"--token_list_dir {{ws}}/tokens --shape_dir {{ws}}/out {DEV}",
         damage=edit_line(lambda ws: ws / "tokens/tokens.txt", 4, b"<unk>\n")),
    Case("inputs_nbpe_1", "make_asr_inputs", f"--token_type bpe --nbpe 1 --token_list_from {DEV} "
         "--token_list_dir {ws}/out", names="--nbpe"),
    Case("inputs_no_utt2dur", "make_asr_inputs",
         "--token_list_dir {ws}/tokens --shape_dir {ws}/out {ws}/nodur",
         damage=copy_dir("data/dev_clean", "nodur", drop=["utt2dur"]), names="{ws}/nodur"),
    Case("inputs_two_dirs_one_name", "make_asr_inputs",
         f"--token_list_dir {{ws}}/tokens --shape_dir {{ws}}/out {DEV} {{ws}}/x/dev_clean",
         damage=copy_dir("data/dev_clean", "x/dev_clean"), names="two data dirs named"),
    Case("inputs_missing_bpe_model", "make_asr_inputs",
         f"--token_type bpe --token_list_dir {{ws}}/tokens --shape_dir {{ws}}/out {DEV}",
         names="{ws}/tokens/bpe.model"),
    # make_synth_corpus
    Case("synth_other_fraction", "make_synth_corpus", "--out {ws}/out --other_fraction 1.5",
         names="other_fraction"),
    Case("synth_zero_train_utts", "make_synth_corpus", "--out {ws}/out --train_utts 0",
         names="train_utts"),
    Case("synth_unknown_language", "make_synth_corpus", "--out {ws}/out --languages fr",
         names="--languages"),
    Case("synth_negative_seed", "make_synth_corpus", "--out {ws}/out --seed -1", names="seed"),
    Case("synth_out_is_a_file", "make_synth_corpus", "--out {ws}/tokens/tokens.txt",
         output="{ws}/tokens", names="{ws}/tokens/tokens.txt"),
    Case("synth_num_jobs_0", "make_synth_corpus", "--out {ws}/out --num_jobs 0",
         names="num_jobs"),
    Case("synth_nan_snr", "make_synth_corpus", "--out {ws}/out --snrs nan", names="snrs"),
    Case("synth_zero_rate_factor", "make_synth_corpus", "--out {ws}/out --rate_factors 0",
         names="rate_factors"),
    Case("synth_other_config_exists", "make_synth_corpus", "--out {ws}/corpus --languages zh",
         output="{ws}/corpus", names="another config"),
]

MODEL_CASES = [
    # kd_cache
    Case("kd_missing_config", "kd_cache", f"{EXP} {DEV_SCP} --output_dir {{ws}}/out",
         damage=lambda ws: (ws / "exp/config.yaml").unlink(), names="{ws}/exp/config.yaml"),
    Case("kd_truncated_model", "kd_cache", f"{EXP} {DEV_SCP} --output_dir {{ws}}/out",
         damage=truncated(lambda ws: ws / "exp/model.pth")),
    Case("kd_missing_wav_scp", "kd_cache",
         f"{EXP} --data_path_and_name_and_type {{ws}}/nope/wav.scp,speech,sound "
         "--output_dir {ws}/out", names="{ws}/nope/wav.scp"),
    Case("kd_missing_audio", "kd_cache", f"{EXP} {DEV_SCP} --output_dir {{ws}}/out",
         damage=missing_audio),
    Case("kd_topk_beyond_vocabulary", "kd_cache",
         f"{EXP} {DEV_SCP} --output_dir {{ws}}/out --topk 1000", names="vocabulary"),
    Case("kd_zero_temperature", "kd_cache",
         f"{EXP} {DEV_SCP} --output_dir {{ws}}/out --temperature 0", names="--temperature"),
    Case("kd_unknown_key", "kd_cache",
         f"{EXP} {DEV_SCP} --output_dir {{ws}}/out --key_file {{ws}}/keys",
         damage=write("keys", "nobody\n"), names="{ws}/keys"),
    Case("kd_spec_and_files", "kd_cache",
         f"{EXP} --teacher_spec {{ws}}/spec.yaml {DEV_SCP} --output_dir {{ws}}/out",
         damage=write("spec.yaml", "asr_train_config: x\n"), names="not both"),
    Case("kd_missing_spec", "kd_cache",
         f"--teacher_spec {{ws}}/spec.yaml {DEV_SCP} --output_dir {{ws}}/out",
         names="{ws}/spec.yaml"),
    Case("kd_cache_of_other_settings", "kd_cache", f"{EXP} {DEV_SCP} --output_dir {{ws}}/out",
         damage=fake_cache),
    # asr_inference
    Case("infer_missing_config", "asr_inference",
         f"{EXP} {DEV_SCP} --output_dir {{ws}}/out --ngpu 0",
         damage=lambda ws: (ws / "exp/config.yaml").unlink(), names="{ws}/exp/config.yaml"),
    Case("infer_truncated_model", "asr_inference",
         f"{EXP} {DEV_SCP} --output_dir {{ws}}/out", damage=truncated(
             lambda ws: ws / "exp/model.pth")),
    Case("infer_config_not_yaml", "asr_inference", f"{EXP} {DEV_SCP} --output_dir {{ws}}/out",
         damage=write("exp/config.yaml", "model: [espnet\n", "{ws}/exp/config.yaml")),
    Case("infer_missing_audio", "asr_inference", f"{EXP} {DEV_SCP} --output_dir {{ws}}/out",
         damage=missing_audio),
    Case("infer_missing_key_file", "asr_inference",
         f"{EXP} {DEV_SCP} --output_dir {{ws}}/out --key_file {{ws}}/keys", names="{ws}/keys"),
    Case("infer_garbage_audio", "asr_inference", f"{EXP} {DEV_SCP} --output_dir {{ws}}/out",
         damage=scp_audio(lambda p: p.write_bytes(b"not audio at all " * 40))),
    Case("infer_truncated_audio", "asr_inference", f"{EXP} {DEV_SCP} --output_dir {{ws}}/out",
         damage=scp_audio(lambda p: p.write_bytes(p.read_bytes()[:3000]))),
    Case("infer_empty_audio", "asr_inference", f"{EXP} {DEV_SCP} --output_dir {{ws}}/out",
         damage=scp_audio(lambda p: p.write_bytes(b""))),
    Case("infer_8k_audio", "asr_inference", f"{EXP} {DEV_SCP} --output_dir {{ws}}/out",
         damage=scp_audio(resampled(rate=8000))),
    Case("infer_stereo_audio", "asr_inference", f"{EXP} {DEV_SCP} --output_dir {{ws}}/out",
         damage=scp_audio(resampled(stereo=True))),
    Case("infer_kaldi_pipe", "asr_inference", f"{EXP} {DEV_SCP} --output_dir {{ws}}/out",
         damage=scp_pipe),
    Case("infer_text_list_in_another_order", "asr_inference",
         f"{EXP} {DEV_SCP} --data_path_and_name_and_type {{ws}}/data/dev_clean/text,text,text "
         "--output_dir {ws}/out",
         damage=lambda ws: swap_lines(ws / "data/dev_clean/text", 1, 2) + ":1"),
    Case("infer_key_file_out_of_order", "asr_inference",
         f"{EXP} {DEV_SCP} --output_dir {{ws}}/out --key_file {{ws}}/keys", damage=keys([1, 0])),
    Case("infer_key_file_duplicate", "asr_inference",
         f"{EXP} {DEV_SCP} --output_dir {{ws}}/out --key_file {{ws}}/keys",
         damage=keys([0, 1, 1])),
    Case("infer_beam_0", "asr_inference", f"{EXP} {DEV_SCP} --output_dir {{ws}}/out "
         "--beam_size 0", names="--beam_size"),
    Case("infer_lp_key_typo", "asr_inference", f"{EXP} {DEV_SCP} --output_dir {{ws}}/out",
         damage=config_set(["model_conf", "lp_decoder_conf", "hiden"], 8, "'hiden'")),
    Case("infer_unknown_lp_loss", "asr_inference", f"{EXP} {DEV_SCP} --output_dir {{ws}}/out",
         damage=config_set(["model_conf", "lp_decoder_conf", "loss"], "ranking", "'ranking'")),
    Case("infer_negative_lp_weight", "asr_inference", f"{EXP} {DEV_SCP} --output_dir {{ws}}/out",
         damage=config_set(["model_conf", "lp_weight"], -1.0, "model_conf.lp_weight")),
    Case("infer_negative_lp_margin", "asr_inference", f"{EXP} {DEV_SCP} --output_dir {{ws}}/out",
         damage=config_set(["model_conf", "lp_decoder_conf", "margin"], -0.5, "margin")),
    Case("infer_checkpoint_of_another_model", "asr_inference",
         f"{EXP} {DEV_SCP} --output_dir {{ws}}/out", damage=broken_state),
    # export_model
    Case("export_missing_exp", "export_model",
         "--exp_dir {ws}/nope --output_dir {ws}/out --verify_wav_scp none",
         names="{ws}/nope/config.yaml"),
    Case("export_truncated_checkpoint", "export_model",
         "--exp_dir {ws}/exp --asr_model_file model.pth --output_dir {ws}/out "
         "--verify_wav_scp none", damage=truncated(lambda ws: ws / "exp/model.pth")),
    Case("export_missing_verify_scp", "export_model",
         "--exp_dir {ws}/exp --asr_model_file model.pth --output_dir {ws}/out "
         "--verify_wav_scp {ws}/nope.scp", names="{ws}/nope.scp"),
    Case("export_verify_num_0", "export_model",
         "--exp_dir {ws}/exp --asr_model_file model.pth --output_dir {ws}/out "
         "--verify_wav_scp none --verify_num 0", names="--verify_num"),
    Case("export_name_with_slash", "export_model",
         "--exp_dir {ws}/exp --asr_model_file model.pth --output_dir {ws}/out "
         "--verify_wav_scp none --name a/b", names="--name"),
    Case("infer_encoder_layers_beyond_encoder", "asr_inference",
         f"{EXP} {DEV_SCP} --output_dir {{ws}}/out",
         damage=config_set(["model_conf", "lp_decoder_conf", "encoder_layers"], [1, 9],
                           "valid: 1..3", features=["hidden", "posteriors"])),
    Case("infer_lp_config_under_stock_model", "asr_inference",
         f"{EXP} {DEV_SCP} --output_dir {{ws}}/out",
         damage=config_set(["model"], "espnet", "needs model: lp_espnet")),
    Case("export_unknown_lp_target", "export_model",
         "--exp_dir {ws}/exp --asr_model_file model.pth --output_dir {ws}/out "
         "--verify_wav_scp none",
         damage=config_set(["model_conf", "lp_decoder_conf", "targets"], ["ctc", "wer"],
                           "lp_decoder_conf: targets")),
]


# ---- the workspace ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def base(synth_corpus, tmp_path_factory):
    from espnet_lp.bin.prepare_data import main as prepare_main

    ws = tmp_path_factory.mktemp("bad_inputs_base").resolve()
    shutil.copytree(synth_corpus, ws / "corpus")
    prepare_main(["--corpus", "librispeech", "--corpus_dir", str(ws / "corpus"), "--subsets",
                  "train-clean-100", "dev-clean", "--output_dir", str(ws / "data")])
    prepare_main(["--corpus", "aishell", "--corpus_dir", str(ws / "corpus"), "--subsets",
                  "train", "--output_dir", str(ws / "zh"), "--on_unmatched", "skip"])
    (ws / "zh/train").rename(ws / "data/zh_train")
    (ws / "zh").rmdir()
    write_token_list(ws / "tokens/tokens.txt", build_char_token_list(
        DataDir.read(ws / "data/train_clean_100").text.values()))
    return ws


@pytest.fixture(scope="module")
def model_base(base, tmp_path_factory):
    ws = _copy(base, tmp_path_factory.mktemp("bad_inputs_model").resolve(),
               ["corpus", "data", "tokens"])
    make_tiny_exp(ws / "tokens/tokens.txt", ws / "exp")
    return ws


def _copy(src: Path, dst: Path, names=None) -> Path:
    """A copy of a workspace whose data dirs read the copy's corpus."""
    for name in names or [p.name for p in src.iterdir()]:
        shutil.copytree(src / name, dst / name, symlinks=True)
    for path in dst.rglob("wav.scp"):
        path.write_text(path.read_text().replace(str(src), str(dst)))
    return dst


def _fresh(base: Path, tmp_path: Path) -> Path:
    return _copy(base, tmp_path / "ws")


def check(case: Case, ws: Path, capsys, caplog, monkeypatch) -> None:
    monkeypatch.chdir(ws)
    named = case.damage(ws) if case.damage else None
    named = case.names.format(ws=ws) if case.names else named
    output = Path(case.output.format(ws=ws))
    before = snapshot(output)
    main = importlib.import_module(f"espnet_lp.bin.{case.cli}").main
    code, report = run_cli(main, shlex.split(case.args.format(ws=ws)), capsys, caplog)
    assert code != 0, f"accepted: {report[-2000:]}"
    assert "Traceback" not in report, report
    assert named in report, f"{named!r} not named in: {report[-2000:]}"
    assert snapshot(output) == before, "the output location changed"
    if output.parent.is_dir():
        assert not [p for p in output.parent.iterdir() if p.name.startswith(f".{output.name}.")]


def test_the_table_is_big_enough():
    assert len(CASES) + len(MODEL_CASES) >= 60
    assert len({c.cli for c in CASES + MODEL_CASES}) == 10


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, base, tmp_path, capsys, caplog, monkeypatch):
    check(case, _fresh(base, tmp_path), capsys, caplog, monkeypatch)


@pytest.mark.parametrize("case", MODEL_CASES, ids=[c.id for c in MODEL_CASES])
def test_bad_model_input(case, model_base, tmp_path, capsys, caplog, monkeypatch):
    check(case, _fresh(model_base, tmp_path), capsys, caplog, monkeypatch)


SUBPROCESS = ["prep_piped_flac", "combine_source_without_text", "subset_negative_utterances",
              "validate_empty", "split_non_utf8", "inputs_no_token_list",
              "synth_other_fraction"]


@pytest.mark.parametrize("case_id", SUBPROCESS)
def test_bad_input_as_a_real_process(case_id, base, tmp_path):
    """As a user runs it: exit status 1, and stderr is log lines only (no traceback)."""
    case = next(c for c in CASES if c.id == case_id)
    ws = _fresh(base, tmp_path)
    named = case.damage(ws) if case.damage else None
    named = case.names.format(ws=ws) if case.names else named
    proc = python("-m", f"espnet_lp.bin.{case.cli}", *shlex.split(case.args.format(ws=ws)))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert named in proc.stderr.splitlines()[-1] or named in proc.stderr
