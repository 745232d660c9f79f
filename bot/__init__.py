"""The sidecar service: webhook intake, jobs, and the Chatwoot agent bot."""
