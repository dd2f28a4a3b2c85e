"""Where a trunk comes from: scratch, another seqrl run, a local GPT-2, or a `seqrl pretrain-lm` run.

`--init` takes one of

    scratch          the trunk's own random initialisation (the default)
    run:RUN_DIR      the trunk of any seqrl run (DT, TT, LM): its `trunk.*` weights
    gpt2:DIR         a GPT-2 saved with `save_pretrained` (config.json + model.safetensors), read
                     by transformers with local_files_only=True: nothing is ever downloaded
    lm:RUN_DIR       a small causal LM trained by `seqrl pretrain-lm` (seqrl.families.lm)

A pretrained trunk fixes the model's width, depth, heads and GELU (`resolve_init` writes them
into the run's config before the model is built). Its weights are copied through an explicit key
map that asserts every shape (`gpt2_trunk_state`): GPT-2's Conv1D layers store their weight as
(in, out), the transpose of nn.Linear's (out, in), as nanoGPT's `from_pretrained` handles. The
LM's learned position table is used as the model's timestep table (`--init-positions timestep`,
the paper's way; rows past the LM's context keep their fresh initialisation) or dropped. Input
projections (returns, states, actions; the TT's tokens) are always new.

`configure_trunk` (run when a family builds its model, so checkpoints load into the same
structure) freezes the trunk (`--freeze-trunk`) or puts peft LoRA adapters on its attention
projections (`--lora-rank`). `initialise` (run by the training loop for a new run only; a resumed
run loads its checkpoint) copies the pretrained weights in and fills the language-model
objectives (seqrl.lm_init.objectives) with the LM's token embeddings and k-means centres.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seqrl.errors import ConfigError
from seqrl.lm_init.config import INIT_KINDS, parse_init  # noqa: F401 (re-exported)

# GPT-2 config activation names -> seqrl.models.gpt's.
GPT2_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu"}
LORA_TARGETS = r".*\.attn\.(qkv|proj)"  # the attention projections of every block (peft full-match regex)


@dataclass
class TrunkSource:
    """A pretrained trunk, in seqrl's layout (keys of models/gpt.py's GPT: blocks.N.*, ln_f.*)."""

    kind: str
    path: Path
    dim: int
    n_layers: int
    n_heads: int
    activation: str
    trunk: dict[str, torch.Tensor]
    positions: torch.Tensor | None = None  # (P, D) the LM's learned position table
    tokens: torch.Tensor | None = None  # (V, D) the LM's token embeddings (its tied output head)
    tokenizer_json: str | None = None  # the LM's tokenizer (tokenizers' JSON), for co-training
    corpus: str | None = None  # the LM's training corpus, for co-training
    fingerprint: str = ""  # hash of the weights, the k-means cache's key


# --------------------------------------------------------------------------- shapes (cheap)
def _gpt2_dir(path: str) -> Path:
    directory = Path(path).expanduser()
    if not directory.exists():
        looks_like_hub = "/" not in path.strip("/") or path.startswith(("gpt2", "openai-community/", "distilgpt2"))
        hint = (" It looks like a model-hub name: seqrl never downloads. Download it elsewhere (e.g. "
                "`huggingface-cli download openai-community/gpt2 --local-dir gpt2`, or "
                "`GPT2LMHeadModel.from_pretrained('gpt2').save_pretrained('gpt2')`), copy the directory here and "
                "pass --init gpt2:DIR (docs/lm_init.md)." if looks_like_hub else "")
        raise ConfigError(f"--init gpt2:{path}: no such directory.{hint}")
    if not (directory / "config.json").is_file():
        raise ConfigError(f"--init gpt2:{path}: {directory} has no config.json; expected a GPT-2 saved with "
                          "save_pretrained (config.json and model.safetensors)")
    return directory


def _gpt2_config(directory: Path) -> dict[str, Any]:
    try:
        config = json.loads((directory / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--init gpt2:{directory}: its config.json is corrupt ({exc})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"--init gpt2:{directory}: its config.json is not a GPT-2 config")
    if config.get("model_type") != "gpt2":
        raise ConfigError(f"{directory}/config.json is a {config.get('model_type')!r} model, not gpt2")
    activation = config.get("activation_function", "gelu_new")
    if activation not in GPT2_ACTIVATIONS:
        raise ConfigError(f"{directory}: activation_function {activation!r} is not supported; "
                          f"seqrl's trunk has {', '.join(sorted(GPT2_ACTIVATIONS))}")
    dim = int(config["n_embd"])
    if config.get("n_inner") not in (None, 4 * dim):
        raise ConfigError(f"{directory}: n_inner {config['n_inner']} != 4 * n_embd; seqrl's MLP is 4x wide")
    if abs(float(config.get("layer_norm_epsilon", 1e-5)) - 1e-5) > 1e-12:
        raise ConfigError(f"{directory}: layer_norm_epsilon {config['layer_norm_epsilon']} != 1e-5 (seqrl's LayerNorm)")
    if config.get("scale_attn_by_inverse_layer_idx") or not config.get("scale_attn_weights", True):
        raise ConfigError(f"{directory}: attention scaling other than 1/sqrt(head dim) is not supported")
    return config


def _run_config(path: str, what: str) -> tuple[Path, dict[str, Any]]:
    run_dir = Path(path).expanduser()
    config_file = run_dir / "config.json"
    if not config_file.is_file():
        raise ConfigError(f"--init {what}:{path}: {run_dir} is not a seqrl run directory (no config.json)")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--init {what}:{path}: {config_file} is corrupt ({exc})") from None
    missing = [k for k in ("embed_dim", "n_layers", "n_heads") if not isinstance(config, dict) or k not in config]
    if missing:
        family = config.get("family", "?") if isinstance(config, dict) else "?"
        raise ConfigError(f"--init {what}:{path}: that run (family {family}) has no transformer trunk to start "
                          f"from (its config has no {', '.join(missing)}); give a DT, TT or pretrain-lm run")
    return run_dir, config


def source_shape(init: str) -> dict[str, Any] | None:
    """The trunk fields a pretrained source fixes (embed_dim, n_layers, n_heads, activation), from
    its config alone (no weights read); None for scratch."""
    kind, path = parse_init(init)
    if kind == "scratch":
        return None
    if kind == "gpt2":
        config = _gpt2_config(_gpt2_dir(path))
        return {"embed_dim": int(config["n_embd"]), "n_layers": int(config["n_layer"]),
                "n_heads": int(config["n_head"]), "activation": GPT2_ACTIVATIONS[config.get("activation_function", "gelu_new")]}
    _, config = _run_config(path, kind)
    # A language model's run names its tokenizer and vocabulary (a `seqrl pretrain-lm` run's
    # config); the trunk of any other run is taken with run:RUN_DIR.
    if kind == "lm" and not {"tokenizer", "vocab_size"} <= set(config):
        raise ConfigError(f"--init lm:{path}: that run is of family {config.get('family', 'dt')!r}, not a "
                          "`seqrl pretrain-lm` run (use run:RUN_DIR to take another run's trunk)")
    return {"embed_dim": int(config["embed_dim"]), "n_layers": int(config["n_layers"]),
            "n_heads": int(config["n_heads"]), "activation": config.get("activation", "gelu")}


def resolve_init(cfg: Any) -> Any:
    """`cfg` with the pretrained trunk's width, depth, heads and GELU (unchanged for scratch)."""
    shape = source_shape(getattr(cfg, "init", "scratch"))
    if shape is None:
        return cfg
    shape = {k: v for k, v in shape.items() if k in cfg.__dataclass_fields__}
    changed = {k: v for k, v in shape.items() if getattr(cfg, k) != v}
    if not changed:
        return cfg
    import sys

    print(f"seqrl: --init {cfg.init} sets " + ", ".join(f"{k} {v} (was {getattr(cfg, k)})" for k, v in changed.items()),
          file=sys.stderr)
    return dataclasses.replace(cfg, **changed)


# --------------------------------------------------------------------------- GPT-2
def gpt2_trunk_state(hf: dict[str, torch.Tensor], n_layers: int, dim: int) -> dict[str, torch.Tensor]:
    """GPT-2's `GPT2Model` state dict -> seqrl GPT's, every shape asserted.

    Conv1D weights are (in, out): transposed into nn.Linear's (out, in). GPT-2's fused c_attn is
    [q | k | v] along its output, as seqrl's qkv is, so it maps without reordering.
    """
    hf = {k.removeprefix("transformer."): v for k, v in hf.items()}
    out: dict[str, torch.Tensor] = {}
    used: set[str] = set()

    def take(src: str, dst: str, shape: tuple[int, ...], transpose: bool = False) -> None:
        if src not in hf:
            raise ConfigError(f"GPT-2 checkpoint has no {src!r} (is it a GPT-2 with {n_layers} layers?)")
        value = hf[src].t() if transpose else hf[src]
        if tuple(value.shape) != shape:
            raise ConfigError(f"GPT-2 {src}: shape {tuple(hf[src].shape)}{' (transposed)' if transpose else ''} "
                              f"does not fit seqrl's {dst} {shape}")
        out[dst] = value.detach().clone().contiguous()
        used.add(src)

    D = dim
    for i in range(n_layers):
        h, b = f"h.{i}", f"blocks.{i}"
        take(f"{h}.ln_1.weight", f"{b}.ln_1.weight", (D,))
        take(f"{h}.ln_1.bias", f"{b}.ln_1.bias", (D,))
        take(f"{h}.attn.c_attn.weight", f"{b}.attn.qkv.weight", (3 * D, D), transpose=True)
        take(f"{h}.attn.c_attn.bias", f"{b}.attn.qkv.bias", (3 * D,))
        take(f"{h}.attn.c_proj.weight", f"{b}.attn.proj.weight", (D, D), transpose=True)
        take(f"{h}.attn.c_proj.bias", f"{b}.attn.proj.bias", (D,))
        take(f"{h}.ln_2.weight", f"{b}.ln_2.weight", (D,))
        take(f"{h}.ln_2.bias", f"{b}.ln_2.bias", (D,))
        take(f"{h}.mlp.c_fc.weight", f"{b}.mlp.fc.weight", (4 * D, D), transpose=True)
        take(f"{h}.mlp.c_fc.bias", f"{b}.mlp.fc.bias", (4 * D,))
        take(f"{h}.mlp.c_proj.weight", f"{b}.mlp.proj.weight", (D, 4 * D), transpose=True)
        take(f"{h}.mlp.c_proj.bias", f"{b}.mlp.proj.bias", (D,))
    take("ln_f.weight", "ln_f.weight", (D,))
    take("ln_f.bias", "ln_f.bias", (D,))
    # Causal-mask buffers of older transformers versions carry no weights; anything else unmapped is a bug.
    left = [k for k in hf if k not in used and k not in ("wte.weight", "wpe.weight", "lm_head.weight")
            and not k.endswith((".attn.bias", ".attn.masked_bias"))]
    if left:
        raise ConfigError(f"GPT-2 checkpoint has weights seqrl's trunk does not map: {', '.join(left[:5])}")
    return out


def _fingerprint(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in sorted(files):
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def load_gpt2(path: str) -> TrunkSource:
    directory = _gpt2_dir(path)
    config = _gpt2_config(directory)
    try:
        from transformers import GPT2Model
    except ImportError:
        raise ConfigError("--init gpt2:DIR needs transformers: pip install 'seqrl[lm]'") from None
    try:
        model = GPT2Model.from_pretrained(str(directory), local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - OSError, ValueError, safetensors' SafetensorError (a truncated file)
        raise ConfigError(f"--init gpt2:{path}: transformers could not load {directory} "
                          f"({type(exc).__name__}: {exc})") from None
    hf = model.state_dict()
    dim, n_layers = int(config["n_embd"]), int(config["n_layer"])
    tokenizer = _gpt2_tokenizer_json(directory)
    weights = [p for p in directory.iterdir() if p.suffix in (".safetensors", ".bin")]
    return TrunkSource("gpt2", directory, dim, n_layers, int(config["n_head"]),
                       GPT2_ACTIVATIONS[config.get("activation_function", "gelu_new")], gpt2_trunk_state(hf, n_layers, dim),
                       positions=hf["wpe.weight"].detach().clone(), tokens=hf["wte.weight"].detach().clone(),
                       tokenizer_json=tokenizer, fingerprint=_fingerprint(weights))


def _gpt2_tokenizer_json(directory: Path) -> str | None:
    """The GPT-2 directory's tokenizer (tokenizer.json, or vocab.json + merges.txt), if it has one."""
    if (directory / "tokenizer.json").is_file():
        return (directory / "tokenizer.json").read_text()
    if (directory / "vocab.json").is_file() and (directory / "merges.txt").is_file():
        from seqrl.lm_init.text import byte_level_bpe

        return byte_level_bpe(directory / "vocab.json", directory / "merges.txt").to_str()
    return None


# --------------------------------------------------------------------------- seqrl runs
def load_run_trunk(path: str, kind: str = "run") -> TrunkSource:
    from seqrl.checkpoint import load_checkpoint

    run_dir, config = _run_config(path, kind)
    shape = source_shape(f"{kind}:{path}")
    payload = load_checkpoint(run_dir)
    state = payload["model"]
    trunk = {k.removeprefix("trunk."): v for k, v in state.items() if k.startswith("trunk.")}
    if not trunk:
        raise ConfigError(f"--init {kind}:{path}: that run's model has no trunk")
    if any(".base_layer." in k or "lora_" in k for k in trunk):
        raise ConfigError(f"--init {kind}:{path}: that run's trunk has LoRA adapters; merge them first")
    source = TrunkSource(kind, run_dir, shape["embed_dim"], shape["n_layers"], shape["n_heads"], shape["activation"], trunk,
                         fingerprint=_fingerprint([run_dir / "checkpoints" / "latest.pt"]))
    if kind == "lm":
        source.positions = state["pos.weight"].clone()
        source.tokens = state["tok.weight"].clone()
        artefacts = payload.get("artefacts") or {}
        source.tokenizer_json = artefacts.get("tokenizer_json")
        corpus = config.get("dataset")
        source.corpus = None if artefacts.get("kind") == "markov" else corpus
    return source


def load_source(init: str) -> TrunkSource | None:
    kind, path = parse_init(init)
    if kind == "scratch":
        return None
    return load_gpt2(path) if kind == "gpt2" else load_run_trunk(path, kind)


# --------------------------------------------------------------------------- building and copying
def configure_trunk(model: nn.Module, cfg: Any) -> nn.Module:
    """Freeze the trunk or give it LoRA adapters, as `cfg` asks (part of building the model)."""
    trunk = getattr(model, "trunk", None)
    if trunk is None:
        return model
    if getattr(cfg, "freeze_trunk", False):
        for p in trunk.parameters():
            p.requires_grad_(False)
    rank = getattr(cfg, "lora_rank", 0)
    if rank:
        try:
            from peft import LoraConfig, inject_adapter_in_model
        except ImportError:
            raise ConfigError("--lora-rank needs peft: pip install 'seqrl[lm]'") from None
        config = LoraConfig(r=rank, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, target_modules=LORA_TARGETS, bias="none")
        inject_adapter_in_model(config, trunk)
        for name, p in trunk.named_parameters():
            p.requires_grad_("lora_" in name)  # only the adapters train; the pretrained trunk stays as loaded
    return model


def _target_key(name: str, keys: set[str]) -> str:
    """A seqrl trunk key in a model whose attention layers peft may have wrapped (…qkv.base_layer.weight)."""
    if name in keys:
        return name
    stem, _, leaf = name.rpartition(".")
    wrapped = f"{stem}.base_layer.{leaf}"
    if wrapped in keys:
        return wrapped
    raise ConfigError(f"the model's trunk has no parameter {name!r}")


def copy_trunk(trunk: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy a seqrl-layout trunk state into `trunk` (LoRA-wrapped or not), asserting every shape."""
    own = trunk.state_dict()
    keys = set(own)
    expected = {k for k in keys if "lora_" not in k}
    written = set()
    with torch.no_grad():
        for name, value in state.items():
            key = _target_key(name, keys)
            if tuple(own[key].shape) != tuple(value.shape):
                raise ConfigError(f"pretrained trunk {name}: shape {tuple(value.shape)} does not fit the model's "
                                  f"{tuple(own[key].shape)}")
            own[key].copy_(value)
            written.add(key)
    missing = sorted(expected - written)
    if missing:
        raise ConfigError(f"the pretrained trunk does not cover the model's {', '.join(missing[:5])}")


POSITION_TABLES = ("embed_timestep", "embed_position")


def _check_activation(trunk: nn.Module, source: TrunkSource) -> None:
    """A trunk built with another GELU than its source's would compute something else, silently."""
    from seqrl.models.gpt import MLP

    wanted = "tanh" if source.activation == "gelu_tanh" else "none"
    have = {m.approximate for m in trunk.modules() if isinstance(m, MLP)}
    if have and have != {wanted}:
        raise ConfigError(f"the model's trunk uses {'the tanh' if 'tanh' in have else 'the exact'} GELU but "
                          f"{source.kind}:{source.path} was trained with {source.activation}; build the trunk with "
                          f"activation={source.activation!r} (a family's config takes it from --init via resolve_init)")


def initialise(model: nn.Module, cfg: Any) -> dict[str, Any] | None:
    """Copy the pretrained trunk `cfg.init` names into `model` (a new run); a summary for the run's metadata."""
    source = load_source(getattr(cfg, "init", "scratch"))
    if source is None:
        return None
    if not isinstance(getattr(model, "trunk", None), nn.Module):
        raise ConfigError(f"--init {cfg.init}: a {type(model).__name__} has no single `trunk` to initialise")
    _check_activation(model.trunk, source)
    copy_trunk(model.trunk, source.trunk)
    summary: dict[str, Any] = {"init": cfg.init, "kind": source.kind, "fingerprint": source.fingerprint,
                               "embed_dim": source.dim, "n_layers": source.n_layers, "n_heads": source.n_heads}
    # The DT's timestep table, or a token-position table (the TT's): where the LM's positions go.
    table = next((getattr(model, n) for n in POSITION_TABLES if isinstance(getattr(model, n, None), nn.Embedding)), None)
    if cfg.init_positions == "timestep" and source.positions is not None and table is not None:
        rows = min(table.num_embeddings, source.positions.shape[0])
        if source.positions.shape[1] != table.embedding_dim:
            raise ConfigError(f"the LM's position table is {source.positions.shape[1]} wide, the timestep table "
                              f"{table.embedding_dim}")
        with torch.no_grad():
            table.weight[:rows] = source.positions[:rows]
        summary["timestep_rows_from_lm"] = rows
    objectives = getattr(model, "lm_objectives", None)
    if objectives is not None:
        objectives.set_source(source, cfg)
    return summary


def source_text(init: str) -> tuple[str | None, str | None]:
    """(tokenizer JSON, corpus) of a language-model source, without reading a GPT-2's weights."""
    kind, path = parse_init(init)
    if kind == "gpt2":
        return _gpt2_tokenizer_json(_gpt2_dir(path)), None
    if kind == "lm":
        source = load_run_trunk(path, "lm")
        return source.tokenizer_json, source.corpus
    return None, None
