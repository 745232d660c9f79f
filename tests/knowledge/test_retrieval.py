"""Hybrid retrieval on the example knowledge base, and access gating, with both store adapters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import qdrant_edge as qe
from qdrant_client import models

from bot.knowledge import edge_store, server_store
from bot.knowledge.edge_store import EdgeStore
from bot.knowledge.embeddings import Embedder
from bot.knowledge.ingest import ingest
from bot.knowledge.retrieval import Retriever
from bot.knowledge.server_store import ServerStore
from bot.knowledge.sparse import bm25_text
from bot.knowledge.store import KnowledgeStore, Scope

from .conftest import EXAMPLES, make_store

PROPERTIES = ("lis-alfama", "por-ribeira", "ber-mitte")
ACCESS_QUESTIONS = (
    "door code",
    "what is the key box code?",
    "wifi password",
    "what's the alarm code",
    "how do I get in, what number do I type on the keypad",
    "código da porta",
    "WLAN Passwort",
)


@pytest.fixture(scope="module", params=["edge", "server"])
def kb(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, database_url: str
) -> Iterator[Retriever]:
    """The example knowledge base ingested once per adapter."""
    store = make_store(request.param, tmp_path_factory.mktemp("store"))
    report = ingest(EXAMPLES, store=store, embedder=embedder, dsn=database_url)
    assert (report.files, report.errors) == (9, ())
    yield Retriever(store, embedder)
    store.close()


def all_payloads(store: KnowledgeStore) -> list[dict[str, Any]]:
    if isinstance(store, EdgeStore):
        edge_records, _ = store._shard.scroll(qe.ScrollRequest(limit=10_000, with_payload=True))
        return [dict(r.payload or {}) for r in edge_records]
    assert isinstance(store, ServerStore)
    records, _ = store.client.scroll(store.collection, limit=10_000, with_payload=True)
    return [dict(r.payload or {}) for r in records]


def count_in_qdrant(store: KnowledgeStore, scope: Scope) -> int:
    """How many points Qdrant itself lets through the scope filter (no Python post-check involved)."""
    if isinstance(store, EdgeStore):
        return store._shard.count(qe.CountRequest(filter=edge_store.scope_filter(scope)))
    assert isinstance(store, ServerStore)
    flt: models.Filter = server_store.scope_filter(scope)
    return store.client.count(store.collection, count_filter=flt, exact=True).count


@pytest.mark.parametrize(
    ("prop", "checkout"),
    [("lis-alfama", "11:00"), ("por-ribeira", "10:00"), ("ber-mitte", "10:30")],
)
def test_checkout_question_finds_the_guests_own_checkout_first(kb: Retriever, prop: str, checkout: str) -> None:
    hits = kb.search("what time is checkout", property_code=prop)

    assert hits[0].property_code == prop
    assert hits[0].heading is not None and hits[0].heading.endswith("Check-out")
    assert f"by {checkout}" in hits[0].text or f"até às {checkout}" in hits[0].text
    assert {h.property_code for h in hits} <= {prop, None}


@pytest.mark.parametrize(
    ("question", "prop", "heading"),
    [
        ("where can I park the car?", "lis-alfama", "Getting around > Parking"),
        ("how do I use the heating", "por-ribeira", "Heating"),
        ("which bin is for plastic?", "ber-mitte", "Trash and recycling"),
        ("Wann ist Nachtruhe?", "ber-mitte", "Hausordnung"),
        ("Is there a washing machine?", "ber-mitte", "Mitte Courtyard Studio – FAQ > Is there a washing machine?"),
        ("can I get an invoice for my company", "por-ribeira", "Can I get an invoice?"),
    ],
)
def test_questions_find_the_right_section(kb: Retriever, question: str, prop: str, heading: str) -> None:
    hits = kb.search(question, property_code=prop, limit=3)

    assert hits[0].heading == heading
    assert all(h.property_code in {prop, None} for h in hits)


def test_unknown_property_sees_only_shared_knowledge(kb: Retriever) -> None:
    hits = kb.search("what time is checkout", property_code=None, limit=10)

    assert hits and {h.property_code for h in hits} == {None}
    assert all(h.source.startswith("shared/") for h in hits)


def test_hits_carry_their_metadata(kb: Retriever) -> None:
    hit = kb.search("wifi password", property_code="ber-mitte", access_properties=frozenset({"ber-mitte"}))[0]

    assert (hit.source, hit.heading, hit.property_code, hit.language, hit.is_access) == (
        "ber-mitte/en/guide.md",
        "Wi-Fi",
        "ber-mitte",
        "en",
        True,
    )
    assert "Spree!Hof#140" in hit.text
    assert hit.score > 0 and len(hit.point_id) == 36


@pytest.mark.parametrize("prop", PROPERTIES)
@pytest.mark.parametrize("question", ACCESS_QUESTIONS)
def test_access_details_stay_hidden_without_access(kb: Retriever, prop: str, question: str) -> None:
    others = frozenset(PROPERTIES) - {prop}  # access to the *other* properties must not open this one

    for access in (frozenset(), others):
        hits = kb.search(question, property_code=prop, access_properties=access, limit=20)
        assert hits
        assert not any(h.is_access for h in hits)
        assert {h.property_code for h in hits} <= {prop, None}


@pytest.mark.parametrize(
    ("question", "prop", "secret"),
    [
        ("door code", "por-ribeira", "7 3 9 0"),
        ("what is the key box code?", "lis-alfama", "4 8 2 1"),
        ("wifi password", "lis-alfama", "azulejo-1755"),
        ("key safe code and alarm", "ber-mitte", "0-5-5-8"),
    ],
)
def test_access_details_appear_for_a_property_with_access(kb: Retriever, question: str, prop: str, secret: str) -> None:
    hits = kb.search(question, property_code=prop, access_properties=frozenset({prop}), limit=3)

    assert hits[0].is_access and hits[0].property_code == prop
    assert secret in hits[0].text


@pytest.mark.parametrize("prop", [*PROPERTIES, None])
@pytest.mark.parametrize("access", [frozenset(), frozenset({"lis-alfama"}), frozenset(PROPERTIES)])
def test_qdrant_filter_itself_enforces_the_scope(kb: Retriever, prop: str | None, access: frozenset[str]) -> None:
    scope = Scope(property_code=prop, access_properties=access)
    expected = [p for p in all_payloads(kb.store) if scope.allows(p)]

    assert count_in_qdrant(kb.store, scope) == len(expected)
    assert all(not p["is_access"] or p["property"] in access for p in expected)
    if prop is not None:
        assert any(p["property"] == prop for p in expected)


def test_scope_rule_in_python() -> None:
    scope = Scope("a", frozenset({"a"}))

    assert scope.allows({"property": "a", "gate": "access"})
    assert scope.allows({"property": None, "gate": "open"})
    assert not scope.allows({"property": None, "gate": "access"})  # shared access text is never shown
    assert not scope.allows({"property": "b", "gate": "open"})
    assert not Scope("a").allows({"property": "a", "gate": "access"})
    assert not Scope("a").allows({"property": "a"})  # no gate field: closed


ADDRESS_QUESTION = "What is the address of the apartment?"
ADDRESSES = {
    "lis-alfama": "Rua dos Remédios 42",
    "por-ribeira": "Rua da Fonte Taurina 18",
    "ber-mitte": "Linienstraße 140",
}


@pytest.mark.parametrize("prop", PROPERTIES)
def test_the_address_stays_hidden_without_rights(kb: Retriever, prop: str) -> None:
    others = frozenset(PROPERTIES) - {prop}  # rights to the *other* properties must not open this one

    for private, access in ((frozenset(), frozenset()), (others, frozenset()), (frozenset(), others)):
        hits = kb.search(
            ADDRESS_QUESTION, property_code=prop, private_properties=private, access_properties=access, limit=20
        )
        assert hits
        assert not any(h.is_private or h.is_access for h in hits)
        assert not any(address in h.text for h in hits for address in ADDRESSES.values())


@pytest.mark.parametrize("prop", PROPERTIES)
def test_the_address_appears_for_a_booked_property(kb: Retriever, prop: str) -> None:
    hits = kb.search(ADDRESS_QUESTION, property_code=prop, private_properties=frozenset({prop}), limit=5)

    private = [h for h in hits if h.is_private]
    assert private and {h.property_code for h in private} == {prop}
    assert any(ADDRESSES[prop] in h.text for h in private)
    assert not any(h.is_access for h in hits)  # the address unlocks no door code
    assert not any(ADDRESSES[other] in h.text for h in hits for other in ADDRESSES if other != prop)


def test_access_rights_include_the_address(kb: Retriever) -> None:
    hits = kb.search(ADDRESS_QUESTION, property_code="ber-mitte", access_properties=frozenset({"ber-mitte"}))

    assert any(h.is_private and "Linienstraße 140" in h.text for h in hits)


@pytest.mark.parametrize("prop", [*PROPERTIES, None])
@pytest.mark.parametrize("private", [frozenset(), frozenset({"lis-alfama"}), frozenset(PROPERTIES)])
def test_qdrant_filter_itself_enforces_the_private_gate(
    kb: Retriever, prop: str | None, private: frozenset[str]
) -> None:
    scope = Scope(property_code=prop, private_properties=private)
    expected = [p for p in all_payloads(kb.store) if scope.allows(p)]

    assert count_in_qdrant(kb.store, scope) == len(expected)
    assert all(p["gate"] == "open" or (p["gate"] == "private" and p["property"] in private) for p in expected)
    gates = {p["gate"] for p in all_payloads(kb.store)}
    assert gates == {"open", "private", "access"}


def test_private_scope_rule_in_python() -> None:
    booked = Scope("a", private_properties=frozenset({"a"}))

    assert booked.allows({"property": "a", "gate": "private"})
    assert not booked.allows({"property": "a", "gate": "access"})  # an address does not open the door
    assert not booked.allows({"property": None, "gate": "private"})  # shared private text is never shown
    assert not Scope("a").allows({"property": "a", "gate": "private"})
    assert Scope("a", access_properties=frozenset({"a"})).allows({"property": "a", "gate": "private"})
    assert not Scope("b", private_properties=frozenset({"a"})).allows({"property": "a", "gate": "private"})


def test_empty_query_and_stop_words(kb: Retriever) -> None:
    assert kb.search("   ", property_code="lis-alfama") == []
    assert kb.search("what is it", property_code="lis-alfama", limit=0) == []
    hits = kb.search("what is it", property_code="lis-alfama")  # only stop words: dense alone still answers
    assert 0 < len(hits) <= 5


def test_bm25_text_joins_compounds() -> None:
    assert bm25_text("Check-out by 11, check in from 3; Wi-Fi and key box, lock-box, e-mail") == (
        "checkout by 11, checkin from 3; wifi and keybox, lockbox, email"
    )
