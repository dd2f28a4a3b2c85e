"""One torch thread for these tests: their models are tiny, so splitting ops across threads only
adds synchronisation, which turns into long stalls on a shared, busy CPU."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
