"""The property matcher on its own: which properties a guest's words name, and how the bot asks which one."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.agent.properties import Matcher, catalogue, code_words, guess_language, known, which
from bot.agent.property_store import PropertyRow
from config.inboxes import PropertyNames, load_inboxes
from config.settings import ConfigError

TOML = """
[inboxes.6]
mode = "autopilot"

[properties.lis-alfama]
name = "Alfama Terrace Apartment"
aliases = ["Casa Alfama", "the Lisbon flat", "Portugal"]

[properties.por-ribeira]
aliases = ["São Bento loft", "Portugal"]

[properties.ber-mitte]
"""
MIRROR = [  # how the Guesty mirror names the three example rentals (title in `name` and raw, a nickname)
    PropertyRow("lis-alfama", "Alfama Terrace Apartment", "LIS-ALFAMA-T2", "Alfama Terrace Apartment"),
    PropertyRow("por-ribeira", "Ribeira Riverside Loft", None, "Ribeira Riverside Loft"),
    PropertyRow("ber-mitte", "Mitte Courtyard Studio", "Studio", "Mitte Courtyard Studio"),
]


@pytest.fixture
def operator(tmp_path: Path) -> dict[str, PropertyNames]:
    path = tmp_path / "inboxes.toml"
    path.write_text(TOML, encoding="utf-8")
    return load_inboxes(path).properties


def test_a_codes_distinctive_words_name_it_but_city_abbreviations_and_lodging_words_do_not() -> None:
    assert code_words("lis-alfama") == ("alfama",)
    assert code_words("por-ribeira-2") == ("ribeira",)
    assert code_words("ber-mitte-studio") == ("mitte",)
    assert code_words("64f0c0ffee1") == ("64f0c0ffee1",)


def test_the_toml_lists_names_and_aliases_per_property(operator: dict[str, PropertyNames]) -> None:
    assert operator == {
        "lis-alfama": PropertyNames(
            name="Alfama Terrace Apartment", aliases=("Casa Alfama", "the Lisbon flat", "Portugal")
        ),
        "por-ribeira": PropertyNames(aliases=("São Bento loft", "Portugal")),
        "ber-mitte": PropertyNames(),
    }


def test_operator_aliases_name_a_property_case_and_accents_ignored(operator: dict[str, PropertyNames]) -> None:
    matcher = Matcher(catalogue([], operator))
    assert matcher.named("Is the LISBON flat near the tram?") == ("lis-alfama",)
    assert matcher.named("casa álfama: is there a lift?") == ("lis-alfama",)
    assert matcher.named("How far is the Sao Bento Loft from the station?") == ("por-ribeira",)
    assert matcher.named("¿Hay aparcamiento en el estudio de MITTE?") == ("ber-mitte",)
    assert matcher.named("Ist die Wohnung in Ribéira ruhig?") == ("por-ribeira",)


def test_names_from_the_properties_table_title_nickname_and_code() -> None:
    matcher = Matcher(catalogue(MIRROR, {}))
    assert matcher.named("Does the Ribeira Riverside Loft have a view?") == ("por-ribeira",)
    assert matcher.named("lis-alfama-t2 check-in time?") == ("lis-alfama",)
    assert matcher.named("Is there a lift at lis-alfama?") == ("lis-alfama",)
    assert matcher.named("Is the studio quiet?") == ()  # "Studio" alone names no property
    assert known("ber-mitte", name="Mitte Courtyard Studio", nickname="Studio").aliases == (
        "mitte courtyard studio",
        "ber mitte",
        "mitte",
    )


def test_a_name_stating_a_street_and_house_number_is_never_matched_nor_shown() -> None:
    prop = known(
        "64f0c0ffee1",
        name="Rua dos Remédios 42 - T2",
        nickname="Rua dos Remédios 42 - T2",
        operator=PropertyNames(aliases=("Linienstraße 140", "Casa Alfama")),
    )
    assert prop.aliases == ("64f0c0ffee1", "casa alfama")
    assert prop.name == "64f0c0ffee1"
    assert known("lis-alfama", name="Rua dos Remédios 42").name == "Alfama"
    assert Matcher([prop]).named("Is Rua dos Remedios 42 the Alfama place?") == ()


def test_only_whole_words_count_never_a_name_inside_another_word(operator: dict[str, PropertyNames]) -> None:
    matcher = Matcher(catalogue(MIRROR, operator))
    assert matcher.named("I got a Mitteilung about my Mitteleuropa trip") == ()
    assert matcher.named("Alfamas and portugalia") == ()
    assert matcher.named("l'Alfama, s'il vous plaît") == ("lis-alfama",)


def test_the_longest_overlapping_name_wins() -> None:
    matcher = Matcher([known("ber-mitte"), known("ber-loft-7", operator=PropertyNames(aliases=("Mitte Loft",)))])
    assert matcher.named("Is the Mitte Loft free in May?") == ("ber-loft-7",)
    assert matcher.named("Is Mitte quiet at night?") == ("ber-mitte",)
    assert matcher.named("Mitte or the mitte loft?") == ("ber-mitte", "ber-loft-7")


def test_a_name_several_properties_share_names_all_of_them_in_order(operator: dict[str, PropertyNames]) -> None:
    matcher = Matcher(catalogue(MIRROR, operator))
    assert matcher.named("Is there parking at your flat in Portugal?") == ("lis-alfama", "por-ribeira")
    assert matcher.named("Mitte or Alfama, which is closer to a beach?") == ("ber-mitte", "lis-alfama")


def test_which_asks_in_the_guests_language_with_every_choice() -> None:
    alfama, ribeira, mitte = catalogue(MIRROR, {})
    assert which([alfama, ribeira], "en") == (
        "Which property do you mean: Alfama Terrace Apartment or Ribeira Riverside Loft?"
    )
    assert which([alfama, ribeira, mitte], "es") == (
        "¿A qué alojamiento te refieres: Alfama Terrace Apartment, Ribeira Riverside Loft o Mitte Courtyard Studio?"
    )
    assert which([ribeira, mitte], "de") == (
        "Welche Unterkunft meinen Sie: Ribeira Riverside Loft oder Mitte Courtyard Studio?"
    )
    assert which([ribeira, mitte], "xx") == (
        "Which property do you mean: Ribeira Riverside Loft or Mitte Courtyard Studio?"
    )


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("¿admiten perros en el estudio de Mitte?", "es"),
        ("Is there parking at the Alfama flat?", "en"),
        ("Gibt es einen Parkplatz bei der Wohnung in Mitte?", "de"),
        ("Vocês aceitam cães no apartamento de Alfama?", "pt"),
        ("Vous acceptez les chiens à Mitte ?", "fr"),
        ("Sono ammessi i cani a Mitte?", "it"),
        ("Mitte?", None),
    ],
)
def test_the_language_of_a_question_is_guessed_only_when_it_is_clear(text: str, language: str | None) -> None:
    assert guess_language(text) == language


NOT_A_LIST = "INBOXES_CONFIG: aliases in [properties.x] must be a list of non-empty strings"


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ('[properties.x]\naliases = "Casa"', NOT_A_LIST),
        ('[properties.x]\naliases = [""]', NOT_A_LIST),
        (
            '[properties.x]\nalias = ["Casa"]',
            "INBOXES_CONFIG: unknown setting(s) ['alias'] in [properties.x]; allowed: aliases, name",
        ),
        ("[properties]\nx = 1", 'INBOXES_CONFIG: [properties.x] must be a table (name = "…", aliases = ["…"])'),
    ],
)
def test_a_malformed_properties_table_names_what_to_fix(tmp_path: Path, table: str, error: str) -> None:
    path = tmp_path / "inboxes.toml"
    path.write_text(table, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_inboxes(path)
    assert str(raised.value) == error


def test_names_and_their_lodging_word_are_taken_out_of_the_question_searched() -> None:
    matcher = Matcher(catalogue(MIRROR, {}))
    assert matcher.without_names("Is there parking at the Alfama flat?") == "Is there parking at?"
    assert matcher.without_names("¿admiten perros en el estudio de Mitte?") == "¿admiten perros en el?"
    assert matcher.without_names("Does the Ribeira Riverside Loft have a view?") == "Does have a view?"
    assert matcher.without_names("Is the studio quiet?") == "Is the studio quiet?"


def test_the_example_inboxes_file_lists_names_the_bot_understands() -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "inboxes.example.toml"
    table = load_inboxes(example)
    assert table.inboxes[9].property == "lis-alfama"
    matcher = Matcher(catalogue([], table.properties))
    assert matcher.named("Is the Porto loft far from the river?") == ("por-ribeira",)
    assert matcher.named("Studio Mitte: is there a washing machine?") == ("ber-mitte",)
    assert matcher.named("Do you have parking in Portugal?") == ("lis-alfama", "por-ribeira")
