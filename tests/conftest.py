"""Fixtures shared by the test modules (plain helpers are in helpers.py)."""
import pytest

from tests.helpers import tiny_checkpoint


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """A tiny random-weight DFEW video checkpoint (s2d_tiny_patch8_64, 4 frames) with its stored args."""
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "checkpoint-best.pth")
