"""Helpers every test folder may use (tiny datasets, configs, models, environments); test
folders import from here, never from one another.

    dt.py    tiny DT configs and datasets (VARIANT_CASES: every action representation x head)
    tt.py    tiny Trajectory Transformers and configs
    lm.py    a tiny random GPT-2, a tiny corpus, tiny DT settings for LM initialisation
    runs.py  run directories as a sweep leaves them (report tests)
    envs.py  a registered toy env whose episode length depends on the seed, and a DT trained on it
"""
