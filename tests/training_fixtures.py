"""Fixtures of the test modules that train: imported by each (autouse, so importing them applies them)."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tiny models run fastest on one thread, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """accelerate keeps process-wide singletons; each test's Accelerator starts from a clean slate."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    yield
