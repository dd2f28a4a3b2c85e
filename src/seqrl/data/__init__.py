"""Offline datasets: the in-memory dataset, its sources, the context sampler, the action tokenizer."""
