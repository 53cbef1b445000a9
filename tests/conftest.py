import os

import keras
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_dtype_policy("float32")  # a test that trains in mixed precision sets it globally


def pytest_report_header(config):
    return f"KERAS_BACKEND={keras.backend.backend()}"
