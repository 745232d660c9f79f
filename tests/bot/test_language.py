"""Answering in the guest's language: detected per message, kept on the conversation, used for the model's
instruction, the offline framing and the hand-off message."""

from __future__ import annotations

import json
from typing import Any

import respx

from demo.samples import guest_message
from tests.bot.conftest import calls, messages_posted
from tests.bot.test_answering import GROQ, groq_reply


def test_a_french_guest_in_an_english_inbox_is_answered_in_french(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any
) -> None:
    settings = bot_settings.model_copy(update={"groq_api_key": "gsk_test"})
    route = chatwoot.post(GROQ).mock(return_value=groq_reply("Le départ se fait avant 11h00."))
    deliver(guest_message(90, 9800, "À quelle heure faut-il libérer l'appartement le jour du départ ?", inbox_id=3))
    drain(settings)
    system = json.loads(route.calls.last.request.content)["messages"][0]["content"]
    assert "3. Answer in French, the guest's language, even when the guides are written in another language." in system
    assert ("POST", "/conversations/90/custom_attributes", {"custom_attributes": {"language": "fr"}}) in calls(chatwoot)
    [(_, body)] = messages_posted(chatwoot)
    assert body["content"] == "Le départ se fait avant 11h00."


def test_an_offline_answer_is_framed_in_the_guests_language(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any
) -> None:
    deliver(guest_message(91, 9810, "Um wie viel Uhr ist der Check-out?", inbox_id=3))
    drain()
    [(_, body)] = messages_posted(chatwoot)
    assert body["content"].startswith("(Automatische Antwort aus unseren Hausinfos — kein KI-Modell eingerichtet)\n")
    assert "\nQuellen: " in body["content"]


def test_a_hand_off_tells_an_italian_guest_in_italian(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any
) -> None:
    deliver(guest_message(92, 9820, "Vorrei parlare con una persona, per favore.", inbox_id=3))
    drain()
    public = [b["content"] for _, b in messages_posted(chatwoot) if not b["private"]]
    assert public == ["Passo il tuo messaggio a un collega, che ti risponderà qui a breve."]


def test_a_short_message_keeps_the_language_the_conversation_already_has(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any
) -> None:
    payload = guest_message(93, 9830, "ok", inbox_id=3)
    payload["conversation"]["custom_attributes"] = {"language": "pt"}
    deliver(payload)  # "ok" says nothing about its language: the conversation's is used
    drain()
    public = [b["content"] for _, b in messages_posted(chatwoot) if not b["private"]]
    assert public == ["Vou passar a sua mensagem a um colega, que lhe responderá aqui em breve."]
    assert not any(p.endswith("/custom_attributes") for _, p, _ in calls(chatwoot))  # nothing new to remember
