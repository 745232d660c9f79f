"""One guest's records as the mirrors and the bot leave them: a booking, two calls, three answers, a hand-off."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg.types.json import Jsonb

CONVERSATION, CONTACT = 57, 9
PANEL_TOKEN = "panel-token-for-tests-0123456789abcdef"
NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
DOOR_CODE = "4821"


def seed(dsn: str, now: datetime = NOW) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO properties (code, name, timezone) VALUES ('lis-alfama', 'Alfama Loft', 'Europe/Lisbon')"
        )
        conn.execute(
            """INSERT INTO reservations (guesty_id, confirmation_code, property_code, status, check_in_at, check_out_at,
                   check_in_local, check_out_local, guest_name, guests_count, chatwoot_contact_id, stay_stage)
               VALUES ('r-1', 'HM4KX2', 'lis-alfama', 'confirmed', %s, %s, %s, %s, 'Oliver Bennett', 2, %s,
                       'during-stay')""",
            (now - timedelta(days=1), now + timedelta(days=3), date(2026, 12, 5), date(2026, 12, 9), CONTACT),
        )
        conn.execute(
            """INSERT INTO call_records (aircall_call_id, direction, status, missed_call_reason, started_at, ended_at,
                   duration_s, voicemail_asset_url, chatwoot_contact_id, chatwoot_conversation_id)
               VALUES (2187340091, 'inbound', 'done', 'no_available_agent', %s, %s, 41,
                       'https://assets.aircall.io/voicemail/2187340091', %s, %s)""",
            (now - timedelta(hours=2), now - timedelta(hours=2) + timedelta(seconds=41), CONTACT, CONVERSATION),
        )
        conn.execute(
            """INSERT INTO call_records (aircall_call_id, direction, status, started_at, answered_at, duration_s,
                   agent_name, recording_asset_url, ai_summary, chatwoot_contact_id)
               VALUES (2187339000, 'inbound', 'done', %s, %s, 184, 'Marta Silva',
                       'https://assets.aircall.io/recording/2187339000', 'Asked about late check-out.', %s)""",
            (now - timedelta(days=1), now - timedelta(days=1), CONTACT),
        )
        conn.execute(
            """INSERT INTO vector_references (point_id, collection, source, chunk_index, property_code, heading,
                   content_hash, gate) VALUES (%s, 'knowledge', 'lis-alfama/en/access.md', 0, 'lis-alfama',
                   'Door code', 'h1', 'access')""",
            (uuid.uuid4(),),
        )
        answers = [
            (
                "What is the door code?",
                f"The door code is {DOOR_CODE}.",
                "answered",
                None,
                [{"source": "lis-alfama/en/access.md", "heading": "Door code"}],
                now - timedelta(hours=5),
            ),
            (
                "What time is check-out?",
                "Check-out is by 11:00.",
                "answered",
                None,
                [{"source": "lis-alfama/en/guide.md", "heading": "Arrival and departure"}],
                now - timedelta(hours=3),
            ),
            (
                "Can I talk to someone?",
                None,
                "handed_off",
                "the guest asked for a person",
                [],
                now - timedelta(hours=1),
            ),
        ]
        for question, answer, outcome, reason, sources, at in answers:
            conn.execute(
                """INSERT INTO qa_records (conversation_id, contact_id, inbox_id, property_code, question, answer,
                       sources, mode, model, outcome, handoff_reason, created_at)
                   VALUES (%s, %s, 3, 'lis-alfama', %s, %s, %s, 'autopilot', 'openai/gpt-oss-120b', %s, %s, %s)""",
                (CONVERSATION, CONTACT, question, answer, Jsonb(sources), outcome, reason, at),
            )
        conn.execute(
            "INSERT INTO conversation_state (conversation_id, inbox_id, contact_id, human_since, human_reason)"
            " VALUES (%s, 3, %s, %s, 'the guest asked for a person')",
            (CONVERSATION, CONTACT, now - timedelta(hours=1)),
        )
