"""Language detection and the language-aware BM25 terms built on it."""

from __future__ import annotations

import pytest

from bot.knowledge.language import LANGUAGES, detect_language, query_languages
from bot.knowledge.sparse import document_vector, query_vector, terms, token_id


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("What time is checkout?", "en"),
        ("Où puis-je garer la voiture ?", "fr"),
        ("¿Cuál es la contraseña del wifi?", "es"),
        ("Wann ist Nachtruhe?", "de"),
        ("Dove posso parcheggiare la macchina?", "it"),
        ("Onde posso estacionar o carro?", "pt"),
        ("Kan ik een factuur krijgen?", "nl"),
    ],
)
def test_detect_language_names_the_guests_language(text: str, lang: str) -> None:
    assert detect_language(text) == lang


@pytest.mark.parametrize("text", ["", "   ", "12:30", "ok thx", "👍"])
def test_detect_language_says_none_when_unsure(text: str) -> None:
    assert detect_language(text) is None


def test_query_languages_keep_the_likely_ones_for_short_questions() -> None:
    assert query_languages("Où puis-je garer la voiture ?")[0] == "fr"
    assert 1 <= len(query_languages("WLAN Passwort")) <= 3
    assert query_languages("") == ["en"]
    assert set(query_languages("a che ora è il check-out")) <= set(LANGUAGES)


def test_terms_are_stemmed_and_stop_words_dropped_per_language() -> None:
    assert terms("Où puis-je garer la voiture ?", "fr") == ["gar", "voitur"]
    assert terms("Die Heizkörper haben Thermostatventile", "de") == ["heizkorp", "thermostatventil"]
    assert terms("Check-out is by 11:00", "en") == ["checkout", "11", "00"]
    assert terms("anything", "xx") == terms("anything", "en")  # unknown language: English


def test_accents_are_folded_so_unaccented_typing_matches() -> None:
    assert terms("contraseña", "es") == terms("contrasena", "es")
    assert terms("código", "pt") == terms("codigo", "pt")


def test_a_question_matches_the_guide_in_its_own_language() -> None:
    guide = document_vector("Estacionamento: o parque mais próximo fica a 8 minutos.", "pt")
    question = query_vector("Onde posso estacionar o carro?")

    assert set(guide.indices) & set(question.indices) == {token_id(terms("estacionar", "pt")[0])}
    assert all(v == 1.0 for v in question.values)
    assert all(v > 0 for v in guide.values) and guide.indices == sorted(guide.indices)


def test_a_question_of_only_stop_words_has_no_terms() -> None:
    assert query_vector("what is it", ["en"]).indices == []
