"""Turn what the stand-in saved and what the sender saw into the one table the harness prints.

Matching rule. Every guest message is alone in its own conversation (fresh conversation id), so the
bot's messages in that conversation all belong to it:
  processed   the bot posted a public message there (an answer, or the hand-off message to the guest),
              or it set the conversation to `open` with its token (Chatwoot's bot hand-off);
  lost        delivered but not processed when the settle time ran out;
  duplicated  the stand-in saved two or more bot messages there with the same content and the same
              private flag (the same answer, note or hand-off message posted twice).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from harness.fuzz import Tally
from harness.stream import Sent


@dataclass
class Row:
    scenario: str
    delivered: int
    acknowledged: int
    processed: int | None
    lost: int | None
    duplicated: int | None
    server_errors: int
    note: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.lost or self.duplicated or self.server_errors)


def by_conversation(state: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for m in state["messages"]:
        found[int(m["conversation_id"])].append(m)
    return found


def is_processed(conv: int, saved: dict[int, list[dict[str, Any]]], opened: set[int]) -> bool:
    return conv in opened or any(not m["private"] for m in saved.get(conv, []))


def is_duplicated(conv: int, saved: dict[int, list[dict[str, Any]]]) -> bool:
    counts = Counter((m["content"], m["private"]) for m in saved.get(conv, []))
    return any(n > 1 for n in counts.values())


def scenario_rows(order: list[str], sent: list[Sent], state: dict[str, Any], notes: dict[str, str]) -> list[Row]:
    saved = by_conversation(state)
    opened = set(state["opened_by_bot"])
    rows = []
    for name in order:
        mine = [s for s in sent if s.scenario == name]
        processed = sum(1 for s in mine if is_processed(s.conversation_id, saved, opened))
        refused = sum(1 for s in mine if not s.acknowledged)
        stuck = sum(1 for s in mine if s.acknowledged and not is_processed(s.conversation_id, saved, opened))
        note = notes.get(name, "")
        if refused:
            note += f"; {refused} deliveries never acknowledged (Chatwoot gave up on them)"
        if stuck:
            note += f"; {stuck} acknowledged but unanswered at the end of the settle time"
        twice = [s.conversation_id for s in mine if is_duplicated(s.conversation_id, saved)]
        if twice:
            more = " ..." if len(twice) > 5 else ""
            note += f"; posted twice in conversations {', '.join(map(str, twice[:5]))}{more}"
        rows.append(
            Row(
                name,
                len(mine),
                len(mine) - refused,
                processed,
                len(mine) - processed,
                sum(1 for s in mine if is_duplicated(s.conversation_id, saved)),
                sum(s.server_errors for s in mine),
                note.strip("; "),
            )
        )
    return rows


def fuzz_row(tally: Tally) -> Row:
    kinds = ", ".join(f"{status or 'no answer'}: {n}" for status, n in sorted(tally.statuses.items()))
    if tally.unsendable:
        kinds += f"; {tally.unsendable} generated requests httpx refused to send (not counted)"
    return Row(f"fuzz /webhooks/{tally.endpoint}", tally.sent, tally.ok, None, None, None, tally.server_errors, kinds)


def render(rows: list[Row]) -> str:
    head = ("scenario", "delivered", "acknowledged", "processed", "lost", "duplicated", "5xx")
    cells = [
        [
            r.scenario,
            str(r.delivered),
            str(r.acknowledged),
            _cell(r.processed),
            _cell(r.lost),
            _cell(r.duplicated),
            str(r.server_errors),
        ]
        for r in rows
    ]
    widths = [max(len(head[i]), *(len(c[i]) for c in cells)) for i in range(len(head))]

    def line(values: list[str] | tuple[str, ...]) -> str:
        return "  ".join(v.ljust(widths[0]) if i == 0 else v.rjust(widths[i]) for i, v in enumerate(values))

    out = [line(head), "  ".join("-" * w for w in widths)]
    out += [line(c) for c in cells]
    notes = [f"  {r.scenario}: {r.note}" for r in rows if r.note]
    if notes:
        out += ["", "notes:", *notes]
    return "\n".join(out)


def _cell(value: int | None) -> str:
    return "-" if value is None else str(value)
