"""Knowledge retrieval latency and ingest throughput, for the default multilingual model and for MiniLM.

    .venv/bin/python bench/retrieval.py [--points 20000] [--queries 400] [--ingest-points 1000]
                                        [--models use-multilingual,minilm] [--local-points 2000]

Builds a synthetic corpus (many properties, varied guide sections, some access details, some shared
FAQs). For each embedding model (EMBEDDING_MODEL values; the first is the one measured, MiniLM the
baseline of the same run): times an ingest of `--ingest-points` chunks (embed with language-aware BM25,
upsert, flush) into a fresh Qdrant Edge store, then loads the whole corpus and times `Retriever.search()`
(question embedding + RRF query with the property and access filter) end to end, on questions in six
languages. With QDRANT_URL set, the same corpus goes to a Qdrant server collection (deleted afterwards)
and is timed the same way; qdrant-client's local mode is timed on a subset as another baseline. Corpus
vectors are cached per model in the temp folder, so a second run skips the slow embedding step (the
ingest figure is always measured afresh). Prints figures only.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.knowledge.chunking import chunk_document
from bot.knowledge.edge_store import EdgeStore
from bot.knowledge.embeddings import MODELS, Embedder
from bot.knowledge.ingest import EMBED_BATCH
from bot.knowledge.models import Chunk, Document, Embedding, Section, SparseVec
from bot.knowledge.retrieval import Retriever
from bot.knowledge.store import KnowledgeStore, Scope, StoredPoint, chunk_payload

STREETS = [
    "Rua das Flores",
    "Linienstraße",
    "Calle de Atocha",
    "Rue Oberkampf",
    "Via dei Serpenti",
    "Dam Street",
    "Rua do Norte",
    "Kastanienallee",
    "Calle Mayor",
    "Avenida da Liberdade",
    "Bergmannstraße",
    "Carrer Verdi",
]
PLACES = [
    "the old market",
    "the river promenade",
    "the cathedral",
    "the main station",
    "the castle hill",
    "the botanical garden",
    "the beach",
    "the harbour",
    "the museum quarter",
    "the food hall",
]
FOODS = [
    "fresh pastries",
    "grilled sardines",
    "tapas",
    "falafel",
    "ramen",
    "wood-fired pizza",
    "seafood rice",
    "vegan bowls",
    "specialty coffee",
    "ice cream",
]
TOPICS: dict[str, list[str]] = {
    "Check-in": [
        "Check-in is from {h1}:00. Self check-in works at any hour once your registration is done.",
        "You can leave luggage from {h2}:00 in the storage room next to {place}.",
        "Arriving after midnight? Tell us the day before so we keep the entrance light on.",
    ],
    "Check-out": [
        "Check-out is by {h2}:00. Late check-out until {h3}:00 costs {price} EUR if nobody arrives.",
        "Before leaving, start the dishwasher, close the windows and leave the keys on the table.",
        "Please leave used towels in the bathtub and take the rubbish down.",
    ],
    "Parking": [
        "The nearest garage is on {street}, about {price} EUR per day, {walk} minutes on foot.",
        "Street parking needs a ticket from the machine, Monday to Saturday 9:00-20:00.",
        "There is a private space in the courtyard; the gate remote hangs by the door.",
    ],
    "Heating": [
        "The radiators have valves from 0 to 5; level 3 is about 20 degrees.",
        "Use the remote on the wall: the sun is heating, the snowflake is cooling.",
        "The boiler needs a minute to warm up; press reset if the red light blinks.",
    ],
    "Trash": [
        "Bins are at the corner of {street}: yellow for plastic, blue for paper, green for glass.",
        "Take rubbish out after 20:00; collection runs every night except Sunday.",
        "Spare bin bags are under the kitchen sink.",
    ],
    "Quiet hours": [
        "Quiet hours are 22:00 to {h4}:00; the neighbours are families with small children.",
        "No parties or events. Keep voices down on the balcony after ten.",
    ],
    "Local tips": [
        "For {food}, try the place on {street}, {walk} minutes away.",
        "Walk to {place} at sunset; the view is best from the upper terrace.",
        "The supermarket on {street} opens at 8:00 and closes at 21:00.",
    ],
    "Kitchen": [
        "The oven is electric; the hob is induction and needs flat pans.",
        "Coffee machine capsules are in the top drawer; there is also a kettle and a toaster.",
        "The dishwasher tablets are under the sink; run the eco programme.",
    ],
    "Laundry": [
        "The washing machine is in the bathroom; a 40 degree cycle takes {walk}0 minutes.",
        "A laundrette on {street} has dryers, open daily 7:00-22:00.",
    ],
    "Transport": [
        "The metro station is {walk} minutes away; buy a rechargeable card at the machine.",
        "A taxi from the airport costs about {price} EUR and takes {walk}0 minutes.",
    ],
}
ACCESS_TOPICS: dict[str, list[str]] = {
    "Door code": ["Street door code: {code}. Then press the key symbol and push the door firmly."],
    "Wi-Fi": ["Network: Flat-{n}. Password: {word}-{code}."],
}
FAQ = [
    "Can I change my dates?",
    "What is the cancellation policy?",
    "Do you provide towels?",
    "Can I get an invoice?",
    "Is there a cot for babies?",
    "How do I reach you at night?",
    "Can I bring a pet?",
    "Is smoking allowed?",
]
QUESTIONS = [
    "what time is checkout",
    "À quelle heure faut-il libérer l'appartement ?",
    "¿Dónde puedo aparcar el coche?",
    "Wie lautet das WLAN-Passwort?",
    "Come si accende il riscaldamento?",
    "Onde ponho o lixo?",
    "where can I park the car",
    "how do I turn on the heating",
    "wifi password",
    "door code",
    "where do I put the rubbish",
    "can I check in early",
    "is there a washing machine",
    "good restaurants nearby",
    "how do I get from the airport",
    "quiet hours",
    "where is the supermarket",
    "can I leave my luggage",
    "how does the coffee machine work",
    "late checkout price",
]


def corpus(points: int, seed: int) -> list[Chunk]:
    """Synthetic guides: 100 chunks per property (5 % access details), plus a shared FAQ of 20 chunks
    after every tenth property."""
    rng = random.Random(seed)
    chunks: list[Chunk] = []
    n = 0
    while len(chunks) < points:
        n += 1
        prop = None if n % 11 == 0 else f"prop-{n:04d}"
        sections = []
        for i in range(20 if prop is None else 100):
            if prop is None:
                question = rng.choice(FAQ)
                sections.append(Section(f"FAQ > {question}", fill(rng, "Yes, ask us in this chat. ") * 2))
            elif i % 20 == 0:
                heading, templates = rng.choice(list(ACCESS_TOPICS.items()))
                sections.append(Section(heading, fill(rng, rng.choice(templates), n=n), is_access=True))
            else:
                heading, templates = rng.choice(list(TOPICS.items()))
                text = " ".join(fill(rng, t) for t in rng.sample(templates, k=min(2, len(templates))))
                sections.append(Section(f"{heading} ({i})", text))
        document = Document(
            source=f"{prop or 'shared'}/en/guide-{n}.md", property_code=prop, language="en", sections=tuple(sections)
        )
        chunks += chunk_document(document, collection="bench", model_id="bench")
    return chunks[:points]


def fill(rng: random.Random, template: str, **extra: object) -> str:
    return template.format(
        h1=rng.choice([14, 15, 16]),
        h2=rng.choice([10, 11, 12]),
        h3=rng.choice([13, 14]),
        h4=rng.choice([7, 8]),
        price=rng.randint(10, 40),
        walk=rng.randint(2, 9),
        street=rng.choice(STREETS),
        place=rng.choice(PLACES),
        food=rng.choice(FOODS),
        code=rng.randint(1000, 9999),
        word=rng.choice(["tulip", "azulejo", "spree"]),
        **extra,
    )


def embed_corpus(chunks: list[Chunk], embedder: Embedder, seed: int) -> list[Embedding]:
    """Vectors for the corpus, from a cache file when this exact corpus was embedded before."""
    model = embedder.model_id.replace("/", "_").replace("@", "-")
    cache = Path(tempfile.gettempdir()) / f"sidecar-bench-{model}-{len(chunks)}-{seed}.npz"
    if cache.exists():
        data = np.load(cache)
        dense, offsets, indices, values = data["dense"], data["offsets"], data["indices"], data["values"]
        print(f"corpus vectors: loaded from {cache}")
    else:
        started = time.perf_counter()
        embeddings: list[Embedding] = []
        for start in range(0, len(chunks), 512):
            part = chunks[start : start + 512]
            embeddings += embedder.embed_documents([c.embed_text for c in part], languages=[c.language for c in part])
            if sys.stderr.isatty():
                print(f"\r  embedded {len(embeddings)}/{len(chunks)}", end="", file=sys.stderr, flush=True)
        if sys.stderr.isatty():
            print(file=sys.stderr)
        took = time.perf_counter() - started
        print(f"corpus vectors: embedded {len(chunks)} chunks in {took:.1f} s ({len(chunks) / took:.0f}/s)")
        dense = np.array([e.dense for e in embeddings], dtype=np.float32)
        offsets = np.cumsum([0] + [len(e.sparse.indices) for e in embeddings])
        indices = np.array([i for e in embeddings for i in e.sparse.indices], dtype=np.int64)
        values = np.array([v for e in embeddings for v in e.sparse.values], dtype=np.float32)
        np.savez(cache, dense=dense, offsets=offsets, indices=indices, values=values)
    return [
        Embedding(
            dense=dense[i].tolist(),
            sparse=SparseVec(
                indices[offsets[i] : offsets[i + 1]].tolist(), values[offsets[i] : offsets[i + 1]].tolist()
            ),
        )
        for i in range(len(chunks))
    ]


def ingest_rate(embedder: Embedder, chunks: list[Chunk], label: str) -> float:
    """Chunks per second of what `sidecar ingest` does per chunk: embed (dense + BM25) in batches of
    EMBED_BATCH, upsert, then one flush, into a fresh Edge store (PostgreSQL bookkeeping excluded)."""
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as folder:
        store = EdgeStore(Path(folder) / "ingest", "ingest", dim=embedder.dim)
        started = time.perf_counter()
        for start in range(0, len(chunks), EMBED_BATCH):
            batch = chunks[start : start + EMBED_BATCH]
            vectors = embedder.embed_documents([c.embed_text for c in batch], languages=[c.language for c in batch])
            store.upsert([StoredPoint(c.point_id, v, chunk_payload(c)) for c, v in zip(batch, vectors, strict=True)])
        store.flush()
        took = time.perf_counter() - started
        store.close()
    rate = len(chunks) / took
    print(f"{label}: ingested {len(chunks)} chunks in {took:.1f} s ({rate:.0f} chunks/s)")
    return rate


def load(store: KnowledgeStore, chunks: list[Chunk], vectors: list[Embedding], label: str) -> None:
    started = time.perf_counter()
    for start in range(0, len(chunks), 1000):
        store.upsert(
            [
                StoredPoint(c.point_id, v, chunk_payload(c))
                for c, v in zip(chunks[start : start + 1000], vectors[start : start + 1000], strict=True)
            ]
        )
    upserted = time.perf_counter() - started
    store.flush()
    indexed = time.perf_counter() - started - upserted
    print(f"{label}: upserted {len(chunks)} points in {upserted:.2f} s, flush + index {indexed:.2f} s")


def measure(retriever: Retriever, queries: int, properties: list[str], seed: int) -> dict[str, list[float]]:
    """Per-query milliseconds: question embedding, store query, and both (what `Retriever.search` costs)."""
    rng = random.Random(seed)
    timings: dict[str, list[float]] = {"embed": [], "search": [], "total": []}
    for i in range(queries + 10):
        prop = rng.choice(properties)
        access = frozenset({prop}) if rng.random() < 0.3 else frozenset()
        question = rng.choice(QUESTIONS)
        t0 = time.perf_counter()
        embedding = retriever.embedder.embed_query(question)
        t1 = time.perf_counter()
        hits = retriever.store.query(embedding, scope=Scope(prop, access), limit=5, prefetch=20)
        t2 = time.perf_counter()
        assert all(h.property_code in {prop, None} for h in hits)
        if i >= 10:  # warm-up excluded
            timings["embed"].append((t1 - t0) * 1000)
            timings["search"].append((t2 - t1) * 1000)
            timings["total"].append((t2 - t0) * 1000)
    return timings


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def report(label: str, points: int, timings: dict[str, list[float]]) -> None:
    parts = [f"{name} p50 {pct(v, 50):6.2f} / p95 {pct(v, 95):6.2f} ms" for name, v in timings.items()]
    print(f"{label:<28} {points:>6} pts  {len(timings['total']):>4} queries  " + " | ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=20_000, help="corpus size (chunks)")
    parser.add_argument("--queries", type=int, default=400, help="timed queries per store")
    parser.add_argument("--ingest-points", type=int, default=1_000, help="chunks of the timed ingest; 0 skips")
    parser.add_argument("--models", default="use-multilingual,minilm", help="EMBEDDING_MODEL values to compare")
    parser.add_argument("--local-points", type=int, default=2_000, help="subset for qdrant-client local mode; 0 skips")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    print(f"cpu cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")
    chunks = corpus(args.points, args.seed)
    properties = sorted({c.property_code for c in chunks if c.property_code})
    print(
        f"corpus: {len(chunks)} chunks, {len(properties)} properties, "
        f"{sum(c.is_access for c in chunks)} access chunks, {sum(c.property_code is None for c in chunks)} shared"
    )
    summary: list[tuple[str, dict[str, list[float]], float | None]] = []
    for n, choice in enumerate(m.strip() for m in args.models.split(",") if m.strip()):
        if choice not in MODELS:
            parser.error(f"--models: {choice!r} is not one of {', '.join(MODELS)}")
        print(f"\n== {choice}")
        started = time.perf_counter()
        embedder = Embedder.packaged(choice)
        print(f"embedder {embedder.model_id} loaded in {time.perf_counter() - started:.2f} s")
        rate = ingest_rate(embedder, chunks[: args.ingest_points], choice) if args.ingest_points else None
        vectors = embed_corpus(chunks, embedder, args.seed)
        with tempfile.TemporaryDirectory(prefix="bench-edge-") as folder:
            edge = EdgeStore(Path(folder) / "bench", "bench", dim=embedder.dim)
            load(edge, chunks, vectors, "edge")
            load(edge, chunks[:10], vectors[:10], "edge, a listing update of 10 chunks")
            timings = measure(Retriever(edge, embedder), args.queries, properties, args.seed)
            report(f"Qdrant Edge, {choice}", edge.count(), timings)
            edge.close()
        summary.append((choice, timings, rate))
        if n == 0:
            other_stores(args, chunks, vectors, embedder)

    print(f"\nsummary: embed + filtered hybrid search at {len(chunks)} chunks (Qdrant Edge), ingest rate")
    for choice, timings, rate in summary:
        ingest = f"{rate:6.0f} chunks/s" if rate else "skipped"
        print(
            f"  {choice:<18} total p50 {pct(timings['total'], 50):6.2f} ms  p95 {pct(timings['total'], 95):6.2f} ms"
            f"  (embed p95 {pct(timings['embed'], 95):5.2f}, search p95 {pct(timings['search'], 95):5.2f})"
            f"  ingest {ingest}"
        )


def other_stores(args: argparse.Namespace, chunks: list[Chunk], vectors: list[Embedding], embedder: Embedder) -> None:
    """The same corpus on a Qdrant server (QDRANT_URL) and on qdrant-client's local mode, for comparison."""
    properties = sorted({c.property_code for c in chunks if c.property_code})
    if os.environ.get("QDRANT_URL"):
        from qdrant_client import QdrantClient

        from bot.knowledge.server_store import ServerStore

        client = QdrantClient(url=os.environ["QDRANT_URL"], api_key=os.environ.get("QDRANT_API_KEY") or None)
        name = f"bench_knowledge_{args.points}"
        if client.collection_exists(name):
            client.delete_collection(name)
        server = ServerStore(client, name, dim=embedder.dim)
        try:
            load(server, chunks, vectors, "server")
            report(
                "Qdrant server",
                server.count(),
                measure(Retriever(server, embedder), args.queries, properties, args.seed),
            )
        finally:
            client.delete_collection(name)
            server.close()
    else:
        print("Qdrant server: skipped (set QDRANT_URL to measure it)")

    if args.local_points:
        import warnings

        from qdrant_client import QdrantClient

        from bot.knowledge.server_store import ServerStore

        subset = args.local_points
        local = ServerStore(QdrantClient(location=":memory:"), "bench", dim=embedder.dim)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load(local, chunks[:subset], vectors[:subset], "qdrant-client local")
            local_props = sorted({c.property_code for c in chunks[:subset] if c.property_code})
            report(
                "qdrant-client local mode",
                local.count(),
                measure(Retriever(local, embedder), min(args.queries, 40), local_props, args.seed),
            )


if __name__ == "__main__":
    main()
