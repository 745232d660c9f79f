"""The knowledge layer: ingest guides into Qdrant, and search them with access gating.

store = open_store(settings)                  # EdgeStore (embedded) or ServerStore (QDRANT_URL)
embedder = Embedder.from_settings(settings)   # EMBEDDING_MODEL: packaged multilingual USE (default) or MiniLM
ingest(Path("knowledge"), store=store, embedder=embedder, dsn=settings.database_dsn, progress=True)
Retriever(store, embedder).search("à quelle heure est le check-out ?", property_code="lis-alfama")
detect_language("à quelle heure est le check-out ?")  # "fr", or None when unsure
run_eval(questions_path, knowledge_path=folder, settings=settings).to_text()  # bot.knowledge.evaluation
"""

from bot.knowledge.embeddings import Embedder, EmbeddingConfigError, packaged_model_dir
from bot.knowledge.ingest import index_document, ingest, remove_document
from bot.knowledge.language import detect_language
from bot.knowledge.models import IngestReport, RetrievedChunk, Section, SyncReport
from bot.knowledge.retrieval import Retriever
from bot.knowledge.store import KnowledgeStore, KnowledgeStoreBusy, KnowledgeStoreError, Scope, open_store

__all__ = [
    "Embedder",
    "EmbeddingConfigError",
    "IngestReport",
    "KnowledgeStore",
    "KnowledgeStoreBusy",
    "KnowledgeStoreError",
    "RetrievedChunk",
    "Retriever",
    "Scope",
    "Section",
    "SyncReport",
    "detect_language",
    "index_document",
    "ingest",
    "open_store",
    "packaged_model_dir",
    "remove_document",
]
