"""Conversion of the published checkpoint, and parity with the authors' own outputs."""

import inspect

import pytest
import torch
from conftest import published_shapes, relative_error
from safetensors.torch import load_file

from fashionflow import CheckpointError, ConditionAdapter, FashionFlowUNet, convert_checkpoint
from fashionflow.cli import main as cli_main
from fashionflow.convert import rename_unet_key

PUBLISHED_UNET_PARAMETERS = 71_671_548


@pytest.fixture(scope="module")
def small(reference_dir):
    small = reference_dir / "official-small"
    return {
        "unet": small / "small_unet.safetensors",
        "adapter": small / "small_adapter.safetensors",
        "io": load_file(small / "small_io.safetensors"),
    }


def parity_errors(unet, adapter, io) -> tuple[float, float]:
    with torch.no_grad():
        context = adapter.eval()(io["clip_last_hidden_state"], io["vae_latent"])
        noise = unet.eval()(io["x"], io["timestep"], io["adapter_out"]).sample
    return relative_error(context, io["adapter_out"]), relative_error(noise, io["unet_out"])


def test_reference_parity_through_safetensors(small):
    unet, adapter = convert_checkpoint(small["unet"], small["adapter"])
    adapter_error, unet_error = parity_errors(unet, adapter, small["io"])
    print(f"parity: adapter {adapter_error:.2e}, unet {unet_error:.2e}")
    assert adapter_error < 1e-5
    assert unet_error < 1e-5


def test_reference_parity_through_pth_with_optimizer_state(small, tmp_path):
    net, adapter = load_file(small["unet"]), load_file(small["adapter"])
    parameter = torch.nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.AdamW([parameter])
    parameter.grad = torch.ones(3)
    optimizer.step()  # so the saved optimizer state holds tensors, as in training saves
    checkpoint = tmp_path / "FashionFlow_checkpoint.pth"
    torch.save({"net": net, "adapter": adapter, "opt": optimizer.state_dict()}, checkpoint)

    unet, adapter = convert_checkpoint(checkpoint)
    adapter_error, unet_error = parity_errors(unet, adapter, small["io"])
    assert adapter_error < 1e-5 and unet_error < 1e-5


def test_parity_test_fails_when_a_path_is_skipped(small):
    """The reference vectors are sensitive: a model without temporal convolutions is far off."""
    unet, adapter = convert_checkpoint(small["unet"], small["adapter"])
    with torch.no_grad():
        for module in unet.modules():
            if getattr(module, "temporal_conv", None) is not None:
                torch.nn.init.dirac_(module.temporal_conv.weight)
                module.temporal_conv.bias.zero_()
    _, unet_error = parity_errors(unet, adapter, small["io"])
    assert unet_error > 0.1


def test_cli_writes_folders_that_from_pretrained_loads(small, tmp_path, capsys):
    assert cli_main(["convert", str(small["adapter"]), str(small["unet"]), "--output", str(tmp_path / "out")]) == 0
    assert "U-Net" in capsys.readouterr().out
    for part in ("unet", "adapter"):
        assert (tmp_path / "out" / part / "config.json").is_file()
        assert (tmp_path / "out" / part / "diffusion_pytorch_model.safetensors").is_file()
    unet = FashionFlowUNet.from_pretrained(tmp_path / "out" / "unet")
    adapter = ConditionAdapter.from_pretrained(tmp_path / "out" / "adapter")
    adapter_error, unet_error = parity_errors(unet, adapter, small["io"])
    assert adapter_error < 1e-5 and unet_error < 1e-5


def test_published_layout_converts_to_the_published_config(reference_dir, tmp_path):
    torch.manual_seed(0)
    unet_sd = {k: torch.randn(shape) for k, shape in published_shapes(reference_dir / "official_unet_keys.tsv").items()}
    adapter_sd = {k: torch.randn(s) for k, s in published_shapes(reference_dir / "official_adapter_keys.tsv").items()}
    checkpoint = tmp_path / "FashionFlow_checkpoint.pth"
    torch.save({"net": unet_sd, "adapter": adapter_sd}, checkpoint)

    unet, adapter = convert_checkpoint(checkpoint)

    assert sum(p.numel() for p in unet.parameters()) == PUBLISHED_UNET_PARAMETERS
    published_defaults = inspect.signature(FashionFlowUNet.__init__).parameters
    for name, parameter in list(published_defaults.items())[1:]:
        expected, got = parameter.default, unet.config[name]
        assert (list(got) == list(expected)) if isinstance(expected, tuple) else (got == expected), name
    assert list(adapter.config.latent_size) == [80, 64]
    # every tensor arrived where the mapping says
    ours = unet.state_dict()
    for key, tensor in unet_sd.items():
        assert torch.equal(ours[rename_unet_key(key)].reshape(tensor.shape), tensor), key


def test_not_a_fashionflow_checkpoint_lists_missing_and_unexpected_keys(tmp_path):
    checkpoint = tmp_path / "other.pth"
    torch.save(
        {"net": {"conv.weight": torch.zeros(2, 2)}, "adapter": {"linear1.weight": torch.zeros(50, 54)}}, checkpoint
    )
    with pytest.raises(CheckpointError) as error:
        convert_checkpoint(checkpoint)
    assert "conv_in.spatial_conv.weight" in error.value.missing
    assert error.value.unexpected == ["conv.weight"]
    assert "missing keys" in str(error.value) and "conv.weight" in str(error.value)


@pytest.mark.parametrize("change", ["drop", "add", "reshape"])
def test_damaged_state_dicts_are_refused(small, tmp_path, change):
    net = load_file(small["unet"])
    if change == "drop":
        del net["downs.1.4.attention_2.q_proj.weight"]
    elif change == "add":
        net["downs.1.9.extra.weight"] = torch.zeros(1)
    else:
        net["downs.1.4.attention_2.q_proj.weight"] = torch.zeros(3, 3)
    checkpoint = tmp_path / "damaged.pth"
    torch.save({"net": net, "adapter": load_file(small["adapter"])}, checkpoint)
    with pytest.raises(CheckpointError) as error:
        convert_checkpoint(checkpoint)
    message = str(error.value)
    if change == "drop":
        assert error.value.missing == ["downs.1.4.attention_2.q_proj.weight"]
    elif change == "add":
        assert error.value.unexpected == ["downs.1.9.extra.weight"]
    else:
        assert "downs.1.4.attention_2.q_proj.weight: (3, 3)" in message


class _Payload:
    """Unpickling this would create a file; weights_only loading must refuse it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickled_code_is_never_run(tmp_path):
    marker = tmp_path / "pwned"
    checkpoint = tmp_path / "evil.pth"
    torch.save({"net": _Payload(marker), "adapter": {}}, checkpoint)
    with pytest.raises(CheckpointError, match="never loaded, since loading them could run code") as refused:
        convert_checkpoint(checkpoint)
    assert not marker.exists()
    assert "weights_only" not in str(refused.value)  # never torch's advice to switch the safety off


def test_truncated_and_wrong_files(small, tmp_path):
    whole = tmp_path / "whole.pth"
    torch.save({"net": load_file(small["unet"]), "adapter": load_file(small["adapter"])}, whole)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="incomplete or damaged"):
        convert_checkpoint(truncated)

    plain = tmp_path / "plain.pth"
    torch.save(load_file(small["unet"]), plain)  # a bare state dict, no 'net'/'adapter'
    with pytest.raises(CheckpointError, match="'net'"):
        convert_checkpoint(plain)

    with pytest.raises(FileNotFoundError):
        convert_checkpoint(tmp_path / "nope.pth")

    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="safetensors"):
        convert_checkpoint(junk, small["adapter"])


def test_cli_reports_errors_without_a_traceback(tmp_path, capsys):
    assert cli_main(["convert", str(tmp_path / "missing.pth"), "--output", str(tmp_path / "out")]) == 2
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
