"""The answering layer: prompt building, the Groq client, offline answers and the answer/handoff decision.

Importing this package does not import the groq SDK; use bot.answer.groq_llm for the client.
"""

from bot.answer.errors import AnswerError, LLMUnavailable
from bot.answer.llm import LLM, LLMResult, StreamingLLM, Usage
from bot.answer.offline import OFFLINE_MODEL, offline_answer
from bot.answer.pipeline import AnswerOutcome, answer_question, detect_human_request, parse_llm_answer
from bot.answer.prompt import GUIDELINES, HANDOFF_MARKER, build_messages
from bot.answer.sentences import sentences, split_sentences
from bot.answer.think import ThinkFilter, strip_think
from bot.answer.types import Answer, ChatMessage, ChunkLike, GuestFacts, Handoff, Source, Turn

__all__ = [
    "GUIDELINES",
    "HANDOFF_MARKER",
    "LLM",
    "OFFLINE_MODEL",
    "Answer",
    "AnswerError",
    "AnswerOutcome",
    "ChatMessage",
    "ChunkLike",
    "GuestFacts",
    "Handoff",
    "LLMResult",
    "LLMUnavailable",
    "Source",
    "StreamingLLM",
    "ThinkFilter",
    "Turn",
    "Usage",
    "answer_question",
    "build_messages",
    "detect_human_request",
    "offline_answer",
    "parse_llm_answer",
    "sentences",
    "split_sentences",
    "strip_think",
]
