"""Language-model initialisation tests need transformers (its GPT-2); the fixtures they share
(tiny_gpt2, corpus_dir) are in tests/conftest.py, the helpers in tests/helpers/lm.py."""

from __future__ import annotations


import pytest

pytest.importorskip("transformers")
