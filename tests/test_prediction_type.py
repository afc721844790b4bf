"""What the U-Net predicts (`prediction_type`): trained, recorded, and read by every sampler.

The main test trains the tiny model on static clips (every frame is the still, so the ideal video
is the still's latent) with each prediction type and checks what it samples: the noise objective
drifts far from the data at this scale, the velocity objective does not (issue 14).
"""

import json

import pytest
import torch
from diffusers import DDPMScheduler
from PIL import Image

from fashionflow.cli import main
from fashionflow.loading import load_pipeline
from fashionflow.pipeline import FashionFlowPipeline
from fashionflow.schedulers import (
    SAMPLERS,
    AncestralDDPMScheduler,
    UnsupportedPredictionTypeError,
    make_scheduler,
    published_scheduler,
)
from fashionflow.tiny import build_tiny_pipeline
from fashionflow.training.checkpoints import read_train_state
from fashionflow.training.data import prepare_dataset
from fashionflow.training.dataset import LatentClipDataset, load_index
from fashionflow.training.objective import add_noise_keep_first_frame, choose_prediction_type
from fashionflow.training.synthetic import write_synthetic_videos
from fashionflow.training.train import TrainConfig, train
from tests.training_fixtures import fresh_accelerate_state, one_thread  # noqa: F401 (autouse)

FRAMES = 8


@pytest.fixture(scope="module")
def static_data(tmp_path_factory):
    """8 static clips of the tiny model's 128 x 128 frame: each its own figure, not moving."""
    videos = tmp_path_factory.mktemp("static-videos")
    write_synthetic_videos(videos, 8, frames=FRAMES, height=128, width=128, seed=0, static=True)
    data = tmp_path_factory.mktemp("static-data") / "data"
    prepare_dataset(videos, data, model="tiny-random", frames=FRAMES, show_progress=False)
    return data


def settings(data, run, **overrides) -> TrainConfig:
    base = dict(
        data=str(data), output=str(run), model="tiny-random", batch_size=4, learning_rate=1e-3, seed=0,
        log_every=1000, checkpoint_every=1000, report_to=None,
    )  # fmt: skip
    return TrainConfig(**{**base, **overrides})


def as_photo(still: torch.Tensor) -> Image.Image:
    return Image.fromarray((still * 255).round().byte().permute(1, 2, 0).numpy())


def sampled_against_data(pipeline, clips) -> dict[str, float]:
    """Latents sampled from each clip's still (dpm++, 25 steps) against the clip's own, frames 1.. (frame 0 is
    the still's latent by construction): the largest per-channel mean difference, in units of the data's
    standard deviation, and the distance relative to the data's norm; both averaged over the clips."""
    channel_errors, distances = [], []
    for item in clips:
        sampled = pipeline(
            as_photo(item["still"]), num_frames=FRAMES, generator=torch.Generator().manual_seed(0),
            output_type="latent",
        ).frames[0][:, 1:]  # fmt: skip
        data = item["latents"][:, 1:]
        channel_means = (sampled.mean(dim=(1, 2, 3)) - data.mean(dim=(1, 2, 3))).abs()
        channel_errors.append((channel_means.max() / data.std()).item())
        distances.append(((sampled - data).norm() / data.norm()).item())
    return {"channel_error": sum(channel_errors) / len(clips), "distance": sum(distances) / len(clips)}


# what a trained model samples -------------------------------------------------------------------------------------


def test_v_prediction_samples_the_still_where_the_noise_objective_drifts(static_data, tmp_path):
    """Same data, seed and 50 steps of batch 4; only the prediction type differs.

    Measured here (training seeds 0-3, 4 stills sampled with dpm++ 25): the noise objective's samples have
    channel means 36-47 data standard deviations off and lie 580-590x the data's norm away; v-prediction's
    are 0.18-0.25 standard deviations off and 4.7-4.8x away (the tiny random VAE's latents are mostly its
    posterior noise, so even ideal samples lie about 1.4x away). The untrained model sampled as v is 0.88
    off (5.6x away): the distance tells drift from no drift, the channel means tell learning. Sampling the
    v model as if it predicted the noise: 43 off, 750x away. (A v run trained on the noise target instead
    scores 0.40 here, inside these limits; `test_the_v_target_is_the_velocity_with_frame_zero_kept` is
    what catches that.)
    """
    clips = LatentClipDataset(static_data, load_index(static_data)["clips"][:4])
    clips = [clips[i] for i in range(len(clips))]
    measured = {}
    for prediction_type in ("epsilon", "v_prediction"):
        result = train(settings(static_data, tmp_path / prediction_type, max_steps=50, prediction_type=prediction_type),
                       show_progress=False)  # fmt: skip
        pipeline = FashionFlowPipeline.from_pretrained(result.pipeline_dir)
        pipeline.set_progress_bar_config(disable=True)
        assert pipeline.scheduler.config.prediction_type == prediction_type
        measured[prediction_type] = sampled_against_data(pipeline, clips)
    untrained = load_pipeline("tiny-random", device="cpu")
    untrained.scheduler = type(untrained.scheduler).from_config(
        untrained.scheduler.config, prediction_type="v_prediction"
    )
    untrained.set_progress_bar_config(disable=True)
    measured["untrained"] = sampled_against_data(untrained, clips)

    v, epsilon = measured["v_prediction"], measured["epsilon"]
    assert v["channel_error"] < 0.5 and v["channel_error"] < 0.5 * measured["untrained"]["channel_error"], measured
    assert v["distance"] < 10, measured
    # the drift this test exists to catch: if the noise objective ever stops drifting at this scale, the test
    # no longer shows that v-prediction is what keeps the samples on the data
    assert epsilon["channel_error"] > 5 and epsilon["distance"] > 50, measured


# the choice, and where it is recorded --------------------------------------------------------------------------------


def test_default_prediction_type():
    untrained = choose_prediction_type(None, model="tiny-random", model_prediction_type="epsilon",
                                       untrained_because="the model tiny-random is marked untrained")  # fmt: skip
    assert untrained.prediction_type == "v_prediction" and "untrained" in untrained.reason and not untrained.warning
    fine_tune = choose_prediction_type(None, model="weights/fashionflow", model_prediction_type="epsilon")
    assert fine_tune.prediction_type == "epsilon" and not fine_tune.warning
    kept = choose_prediction_type("v_prediction", model="RUN/pipeline", model_prediction_type="v_prediction")
    assert kept.prediction_type == "v_prediction" and not kept.warning
    changed = choose_prediction_type("v_prediction", model="weights/fashionflow", model_prediction_type="epsilon")
    assert changed.prediction_type == "v_prediction" and "must relearn its output" in changed.warning
    asked = choose_prediction_type(
        "epsilon", model="m", model_prediction_type="epsilon", untrained_because="--init scratch"
    )
    assert asked.prediction_type == "epsilon" and not asked.warning
    with pytest.raises(ValueError, match="--prediction-type must be one of"):
        choose_prediction_type("sample", model="m", model_prediction_type="epsilon")


def test_the_choice_is_printed_and_recorded_and_a_resume_keeps_it(static_data, tmp_path, capsys):
    run = tmp_path / "run"
    result = train(settings(static_data, run, max_steps=2, checkpoint_every=1), show_progress=False)
    out = capsys.readouterr().out
    assert (
        "Prediction type: v_prediction (the default for training from untrained weights (the model tiny-random" in out
    )

    scheduler_config = json.loads((result.pipeline_dir / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler_config["prediction_type"] == "v_prediction"
    recorded = json.loads((run / "config.json").read_text())
    assert recorded["prediction_type"] is None and recorded["resolved"]["prediction_type"] == "v_prediction"
    assert (
        "| prediction type | `v_prediction`: the U-Net predicts the velocity"
        in (result.pipeline_dir / "README.md").read_text()
    )
    assert read_train_state(run / "checkpoint-2")["prediction_type"] == "v_prediction"

    # a resumed run keeps the checkpoints' type, and refuses another one before touching anything
    before = (run / "config.json").read_text()
    assert main(["train", str(static_data), "-o", str(run), "--model", "tiny-random", "--max-steps", "3",
                 "--resume", "latest", "--prediction-type", "epsilon", "--report-to", "none"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "checkpoint-2 was trained with --prediction-type v_prediction, and a resumed run keeps it" in err, err
    assert (run / "config.json").read_text() == before and "checkpoint-3" not in {p.name for p in run.iterdir()}
    train(settings(static_data, run, max_steps=3, resume="latest"), show_progress=False)
    assert "Prediction type: v_prediction (as the checkpoint" in capsys.readouterr().out
    assert json.loads((run / "config.json").read_text())["resolved"]["prediction_type"] == "v_prediction"

    # a checkpoint from before the type was recorded was trained on the noise
    state = read_train_state(run / "checkpoint-3")
    del state["prediction_type"]
    (run / "checkpoint-3" / "train_state.json").write_text(json.dumps(state))
    train(settings(static_data, run, max_steps=4, resume="latest"), show_progress=False)
    assert "Prediction type: epsilon (as the checkpoint" in capsys.readouterr().out


def test_fine_tuning_keeps_the_models_type_and_warns_when_asked_to_change_it(static_data, tmp_path, capsys):
    trained = build_tiny_pipeline()
    trained.register_to_config(untrained=False)  # stands in for a trained epsilon model, as the published one is
    trained.save_pretrained(tmp_path / "epsilon-model")
    model = str(tmp_path / "epsilon-model")

    result = train(settings(static_data, tmp_path / "keep", model=model, max_steps=1), show_progress=False)
    captured = capsys.readouterr()
    assert (
        f"Prediction type: epsilon (the default when fine-tuning: the model {model} predicts epsilon)" in captured.out
    )
    assert "Warning" not in captured.err
    assert FashionFlowPipeline.from_pretrained(result.pipeline_dir).scheduler.config.prediction_type == "epsilon"

    result = train(settings(static_data, tmp_path / "change", model=model, max_steps=1, prediction_type="v_prediction"),
                   show_progress=False)  # fmt: skip
    captured = capsys.readouterr()
    assert "Prediction type: v_prediction (as asked, instead of the epsilon" in captured.out
    assert "Warning:" in captured.err and "must relearn its output" in captured.err
    assert FashionFlowPipeline.from_pretrained(result.pipeline_dir).scheduler.config.prediction_type == "v_prediction"


def test_the_v_target_is_the_velocity_with_frame_zero_kept():
    scheduler = type(published_scheduler()).from_config(published_scheduler().config, prediction_type="v_prediction")
    x0, noise = torch.randn(2, 4, 6, 8, 8), torch.randn(2, 4, 6, 8, 8)
    t = torch.tensor([10, 999])
    noisy, target = add_noise_keep_first_frame(scheduler, x0, noise, t)
    alphabar = scheduler.alphas_cumprod[t].view(2, 1, 1, 1, 1)
    torch.testing.assert_close(target[:, :, 1:], (alphabar.sqrt() * noise - (1 - alphabar).sqrt() * x0)[:, :, 1:])
    assert (target[:, :, 0] == 0).all() and torch.equal(noisy[:, :, 0], x0[:, :, 0])
    torch.testing.assert_close(noisy[:, :, 1:], (alphabar.sqrt() * x0 + (1 - alphabar).sqrt() * noise)[:, :, 1:])


# sampling ---------------------------------------------------------------------------------------------------------


def test_the_authors_ddpm_update_turns_a_v_prediction_into_its_noise():
    epsilon_ddpm = make_scheduler("ddpm")
    v_ddpm = make_scheduler("ddpm", {**epsilon_ddpm.config, "prediction_type": "v_prediction"})
    assert isinstance(v_ddpm, AncestralDDPMScheduler) and v_ddpm.config.prediction_type == "v_prediction"
    for scheduler in (epsilon_ddpm, v_ddpm):
        scheduler.set_timesteps(1000)
    alphas_cumprod = epsilon_ddpm.alphas_cumprod
    x = torch.randn(1, 4, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    v = torch.randn(1, 4, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    for t in (999, 500, 1, 0):
        eps = alphas_cumprod[t].sqrt() * v + (1 - alphas_cumprod[t]).sqrt() * x  # the noise this v stands for
        ours = v_ddpm.step(v, t, x, generator=torch.Generator().manual_seed(t))
        theirs = epsilon_ddpm.step(eps, t, x, generator=torch.Generator().manual_seed(t))
        assert torch.equal(ours.prev_sample, theirs.prev_sample)
        assert torch.equal(ours.pred_original_sample, theirs.pred_original_sample)
        # and the clean latent it implies is the one a v prediction means: sqrt(ab) x_t - sqrt(1 - ab) v
        expected = alphas_cumprod[t].sqrt() * x - (1 - alphas_cumprod[t]).sqrt() * v
        torch.testing.assert_close(ours.pred_original_sample, expected, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("sampler", [*SAMPLERS, None])
def test_every_sampler_reads_the_prediction_type_of_the_model_folder(sampler, tmp_path, monkeypatch):
    pipe = build_tiny_pipeline()
    pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, prediction_type="v_prediction")
    pipe.save_pretrained(tmp_path / "v-model")
    loaded = load_pipeline(str(tmp_path / "v-model"), device="cpu")
    seen = []

    def recording(step):
        def recorded(self, *args, **kwargs):
            seen.append(self.config.prediction_type)
            return step(self, *args, **kwargs)

        return recorded

    for scheduler_class in {cls for cls, _, _ in SAMPLERS.values()} | {DDPMScheduler}:
        monkeypatch.setattr(scheduler_class, "step", recording(scheduler_class.step))

    class Enough(Exception):
        pass

    def three_steps(stage, done, total):  # ddpm's exact update runs only at its full 1000 steps: sample 3 of them
        if stage == "denoise" and done == 3:
            raise Enough

    with pytest.raises(Enough):
        loaded(Image.new("RGB", (128, 128), (200, 40, 40)), num_frames=2, sampler=sampler,
               num_inference_steps=1000 if sampler == "ddpm" else 4, progress=three_steps)  # fmt: skip
    assert len(seen) >= 3 and set(seen) == {"v_prediction"}


def test_a_model_whose_prediction_type_cannot_be_sampled_is_refused_at_load(tmp_path, capsys):
    pipe = build_tiny_pipeline()
    pipe.save_pretrained(tmp_path / "model")
    config_file = tmp_path / "model" / "scheduler" / "scheduler_config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "prediction_type": "sample"}))

    with pytest.raises(UnsupportedPredictionTypeError) as refused:
        load_pipeline(str(tmp_path / "model"), device="cpu")
    message = str(refused.value)
    assert str(tmp_path / "model") in message and "'sample'" in message and "'v_prediction'" in message
    photo = tmp_path / "photo.png"
    Image.new("RGB", (128, 128), (200, 40, 40)).save(photo)
    assert main(["generate", str(photo), "-o", str(tmp_path / "out.mp4"), "--model", str(tmp_path / "model")]) == 2
    err = capsys.readouterr().err
    assert "cannot be sampled" in err and "'sample'" in err and "Traceback" not in err
    assert not (tmp_path / "out.mp4").exists()

    from fashionflow.service import load_model

    state = load_model(str(tmp_path / "model"), device="cpu")
    assert not state.ready and "cannot be sampled" in state.error
    with pytest.raises(UnsupportedPredictionTypeError, match="'sample'"):
        make_scheduler("dpm++", {**pipe.scheduler.config, "prediction_type": "sample"})
