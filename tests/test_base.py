"""fashionflow.base, the bottom layer: files written whole, seeds, manifests, parsing, errors and settings."""

from __future__ import annotations

import argparse
import errno
import json
import os
import random
from dataclasses import dataclass

import pytest

from fashionflow.base import errors, files, seeds
from fashionflow.base.environment import truth, whole_number
from fashionflow.base.errors import FashionFlowError, SettingsError, exit_status, explain
from fashionflow.base.manifests import Manifest
from fashionflow.base.options import add_arguments, check, flags_of, from_arguments, from_environment, option

# writing files and folders whole --------------------------------------------------------------------------------------


def test_a_failed_write_leaves_the_earlier_file_and_no_partial(tmp_path):
    path = files.write_json(tmp_path / "report.json", {"version": 1})
    with pytest.raises(RuntimeError), files.atomic_file(path) as partial:
        partial.write_text('{"version": 2, "cut')
        raise RuntimeError("killed while writing")
    assert json.loads(path.read_text()) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_file_made_owner_only_gets_the_usual_mode(tmp_path):
    with files.atomic_file(tmp_path / "shard.bin") as partial:
        partial.write_bytes(b"x")
        os.chmod(partial, 0o600)  # as mkstemp and safetensors leave it
    assert (tmp_path / "shard.bin").stat().st_mode & 0o777 == 0o666 & ~files.current_umask()


def test_partials_share_one_pattern_that_cleanup_finds(tmp_path):
    video = tmp_path / "look.mp4"
    left = [files.partial_path(video), files.partial_path(video)]
    for path in left:
        path.write_bytes(b"half")
    other = files.partial_path(tmp_path / "other.mp4")
    other.write_bytes(b"half")
    assert files.partials_of(video) == sorted(left) and left[0].name.startswith(".look.")
    assert files.partial_path(video, token="staging") == files.partial_path(video, token="staging")
    files.remove_partials(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "pipeline"
    with files.atomic_folder(target) as staging:
        (staging / "model_index.json").write_text("{}")
    with pytest.raises(OSError), files.atomic_folder(target) as staging:
        (staging / "half").write_text("")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert [p.name for p in target.iterdir()] == ["model_index.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["pipeline"]


def test_file_hash(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert files.file_sha256(tmp_path / "f") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


# seeds ------------------------------------------------------------------------------------------------------------------


def test_seeds_have_one_range_and_one_derivation():
    # the widest range a command ever took (generate --seed), so no seed that worked stops working
    assert (seeds.MIN_SEED, seeds.MAX_SEED) == (0, 2**63 - 1)
    # pinned: the catalogue's formula since its first release (a catalogue's videos keep their seeds)
    assert seeds.derive_seed(0, "a.jpg") == 1681512010
    assert seeds.derive_seed(7, "solo.png") != seeds.derive_seed(8, "solo.png") != seeds.derive_seed(7, "solo.jpg")
    drawn = [seeds.random_seed(random.Random(i)) for i in range(50)]
    assert all(0 <= s < seeds.DRAWN_SEEDS for s in drawn) and drawn == [
        seeds.random_seed(random.Random(i)) for i in range(50)
    ]
    assert [seeds.narrow_seed(s) for s in (0, 2**32 - 1, 2**32, 2**63 - 1)] == [0, 2**32 - 1, 0, 2**32 - 1]


# manifests ------------------------------------------------------------------------------------------------------------


def test_parts_of_several_processes_merge_into_one_record_per_item(tmp_path):
    def manifest(rank: int) -> Manifest:
        return Manifest(tmp_path / "manifest.jsonl", "video", tmp_path / f"manifest-{rank}.jsonl", "manifest-*.jsonl")

    manifest(0).record({"video": "a", "status": "failed"})
    manifest(1).record({"video": "b", "status": "written"})
    with open(tmp_path / "manifest-1.jsonl", "a") as part:
        part.write('{"video": "c", "sta')  # cut short by a kill
    records = manifest(0).merge()
    assert sorted(records) == ["a", "b"] and not list(tmp_path.glob("manifest-*.jsonl"))
    manifest(1).record({"video": "a", "status": "written"})  # a later run redoes "a"
    assert manifest(0).merge()["a"]["status"] == "written"
    lines = (tmp_path / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(line)["video"] for line in lines] == ["a", "b"]


# parsing --------------------------------------------------------------------------------------------------------------


def test_whole_numbers_and_truth_from_text_json_and_flags():
    assert whole_number("8", "FASHIONFLOW_PORT", 1) == 8 and whole_number(25.0, "Steps", 1, 1000) == 25
    for bad, message in [
        ("0", "FASHIONFLOW_PORT must be a positive whole number; got '0'."),
        ("1.5", "FASHIONFLOW_PORT must be a positive whole number; got '1.5'."),
        (True, "FASHIONFLOW_PORT must be a positive whole number; got True."),
    ]:
        with pytest.raises(ValueError) as refused:
            whole_number(bad, "FASHIONFLOW_PORT", 1)
        assert str(refused.value) == message
    with pytest.raises(ValueError, match="Frames must be an even number of 2 or more; got 7"):
        whole_number(7, "Frames", 2, even=True)
    assert [truth(v, "X") for v in ("yes", "Off", "", 1, False)] == [True, False, False, True, False]
    with pytest.raises(ValueError, match="X must be true or false; got 'sometimes'"):
        truth("sometimes", "X")


# errors ---------------------------------------------------------------------------------------------------------------


class _Stopped(FashionFlowError):
    kind = errors.STOPPED


def test_the_exit_status_follows_from_the_kind_of_error():
    assert exit_status(SettingsError("x")) == exit_status(FileNotFoundError("x")) == 2
    assert exit_status(OSError(errno.ENOSPC, "No space left on device")) == 1
    assert exit_status(MemoryError()) == exit_status(_Stopped("NaN")) == exit_status(KeyError("bug")) == 1
    assert exit_status(KeyboardInterrupt()) == 130


def test_one_translator_words_for_the_command_line_and_for_a_visitor():
    full = OSError(errno.ENOSPC, "No space left on device")
    assert explain(full).message.startswith("The disk is full. Free some space")
    visitor = explain(full, doing="making the video")
    assert visitor.message.startswith("The server's disk is full, so nothing could be saved while making the video")
    bug = explain(KeyError("frames"), doing="making the video")
    assert bug.kind is errors.INTERNAL and bug.reference in bug.message and "KeyError" not in bug.message
    assert explain(KeyError("frames")).message == "An unexpected error occurred (KeyError: 'frames')."
    assert explain(MemoryError(), memory_advice="Use fewer frames.").message.endswith("Use fewer frames.")


def test_errors_name_settings_as_the_reader_knows_them():
    error = SettingsError(
        "{batch_size} must be positive; pass {resume} to continue", settings={"batch_size": None, "resume": "latest"}
    )
    assert str(error) == "batch_size must be positive; pass resume='latest' to continue"
    flags = {"batch_size": "--batch-size", "resume": "--resume"}
    assert explain(error, flags=flags).message == "--batch-size must be positive; pass --resume latest to continue"
    taken = SettingsError(f"{errors.literal('{run}')} is taken: {{resume}}", settings={"resume": "latest"})
    assert str(taken) == "{run} is taken: resume='latest'"
    assert str(SettingsError("{'net'} missing")) == "{'net'} missing"  # no settings named: the text as it is
    switch = SettingsError("pass {overwrite} to remake them", settings={"overwrite": True})  # a switch turned on
    assert str(switch) == "pass overwrite=True to remake them"
    assert explain(switch, flags={"overwrite": "--overwrite"}).message == "pass --overwrite to remake them"


# settings -------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Settings:
    """Make something of INPUT."""

    input: str = option(help="what to read", positional=True)
    steps: int = option(25, "denoising steps (default: {default})", low=1, high=1000)
    sampler: str = option("dpm++", "default: {default}", choices=("ddim", "dpm++"))
    seeds: tuple[int, ...] = option((0,), "seeds, comma-separated", comma_list=True, low=0, each=True)
    tiny: bool = option(True, "skip the tiny decoder", off_flag="--no-tiny")
    report_to: str | None = option("tensorboard", "tracker", choices=("tensorboard",), none_word="none")
    port: int = option(7860, "port", low=1, env=("APP_PORT", "OTHER_PORT"))
    hidden: float = option(0.5, "not a flag", cli=False)


def test_flags_and_checks_come_from_the_settings_fields():
    parser = argparse.ArgumentParser()
    add_arguments(parser, _Settings)
    args = parser.parse_args(["x", "--steps", "5000", "--seeds", "1,2", "--no-tiny", "--report-to", "none"])
    settings = from_arguments(_Settings, args)
    assert (settings.steps, settings.seeds, settings.tiny, settings.report_to, settings.hidden) == (
        5000,
        (1, 2),
        False,
        None,
        0.5,
    )
    with pytest.raises(SettingsError) as refused:
        check(settings)
    assert str(refused.value) == "steps must be a whole number from 1 to 1000; got 5000."
    assert explain(refused.value, flags=flags_of(_Settings)).message.startswith("--steps must be a whole number")
    assert "denoising steps (default: 25)" in parser.format_help()
    with pytest.raises(SystemExit):
        parser.parse_args(["x", "--sampler", "euler"])

    strict = argparse.ArgumentParser()
    add_arguments(strict, _Settings, check_on_parse=True)
    with pytest.raises(SystemExit):
        strict.parse_args(["x", "--steps", "0"])
    assert from_environment(_Settings, {"OTHER_PORT": "8080"}) == {"port": 8080}
    with pytest.raises(ValueError, match="APP_PORT must be a positive whole number"):
        from_environment(_Settings, {"APP_PORT": "http"})
