"""The demo and the stand-ins it and the benchmarks use (a Chatwoot and a Groq that run locally).

Kept out of the runtime package on purpose: the Docker image ships `bot/`, `integrations/`, `speech/`
and `config/` only, so nothing here can be reached in production. Run it with `make demo`.
"""
