"""Fixtures shared by the test modules (plain helpers are in helpers.py)."""
import os

import pytest

from tests.helpers import tiny_checkpoint


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """A tiny random-weight DFEW video checkpoint (s2d_tiny_patch8_64, 4 frames) with its stored args."""
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "checkpoint-best.pth")


@pytest.fixture(scope="session", autouse=True)
def backend_cache(tmp_path_factory):
    """The exported and compiled models of inference/backends.py go to a folder of this test session."""
    folder = tmp_path_factory.mktemp("backend_cache")
    previous = os.environ.get("S2D_CACHE")
    os.environ["S2D_CACHE"] = str(folder)
    yield folder
    if previous is None:
        del os.environ["S2D_CACHE"]
    else:
        os.environ["S2D_CACHE"] = previous
