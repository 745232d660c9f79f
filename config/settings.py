"""Settings read from the environment (and Docker secrets), checked once at start-up.

Every secret NAME may instead be given as NAME_FILE=/run/secrets/name, the Docker secrets
convention. A missing or malformed value stops the process with one message that names the
variable and says how to fix it, rather than failing later inside a job.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigurationError

SECRET_NAMES = (
    "CHATWOOT_BOT_TOKEN",
    "CHATWOOT_API_TOKEN",
    "CHATWOOT_BOT_SECRET",
    "CHATWOOT_WEBHOOK_TOKEN",
    "GROQ_API_KEY",
    "AZURE_SPEECH_KEY",
    "AIRCALL_WEBHOOK_TOKEN",
    "AIRCALL_API_ID",
    "AIRCALL_API_TOKEN",
    "GUESTY_WEBHOOK_SECRET",
    "GUESTY_CLIENT_ID",
    "GUESTY_CLIENT_SECRET",
    "DATABASE_URL",
    "CHATWOOT_ADMIN_TOKEN",
    "PANEL_TOKEN",
)

HOW_TO_FIX = {
    "DATABASE_URL": "set it to a PostgreSQL URL such as postgresql://user@host:5432/sidecar",
    "REDIS_URL": "set it to a Redis URL such as redis://host:6379/0",
    "CHATWOOT_URL": "set it to your Chatwoot's root URL, e.g. https://chat.example.com (no /api path)",
    "CHATWOOT_ACCOUNT_ID": "set it to the numeric account id shown in Chatwoot URLs (/app/accounts/<id>/...)",
    "GUESTY_WEBHOOK_SECRET": "copy the whsec_... secret from Guesty's GET /v1/webhooks-v2/secret",
    "SPEECH_BACKEND": "use 'azure' (needs AZURE_SPEECH_KEY) or 'local'",
    "AZURE_SPEECH_REGION": "set it (e.g. westeurope) or set AZURE_SPEECH_ENDPOINT",
    "EMBEDDING_MODEL": "use 'use-multilingual' (default), 'minilm', or 'onnx' with EMBEDDING_MODEL_PATH",
}


class ConfigError(ConfigurationError):
    """A setting is missing or malformed; the message names the variable and the fix."""


class Settings(BaseSettings):
    """All runtime settings. Field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, *args, **kwargs):
        # load_settings() resolves the environment and *_FILE secrets itself and passes them in,
        # so a test can hand over an exact environment without the process's leaking in.
        return (init_settings,)

    # Storage and queues
    database_url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/sidecar")
    # Statements are prepared on first use (a reply runs each only a few times per connection). PgBouncer in
    # transaction mode before 1.21 cannot keep a session's prepared statements: set false behind it.
    database_prepared_statements: bool = True
    redis_url: str = "redis://127.0.0.1:6379/0"
    queue_name: str = "sidecar"
    qdrant_url: str = ""
    qdrant_api_key: SecretStr | None = None
    qdrant_path: Path = Path("data/qdrant")
    qdrant_collection: str = "knowledge"

    # Chatwoot
    chatwoot_url: str = ""
    chatwoot_account_id: int | None = None
    chatwoot_bot_token: SecretStr | None = None
    chatwoot_api_token: SecretStr | None = None
    chatwoot_bot_secret: SecretStr | None = None
    chatwoot_webhook_token: SecretStr | None = None
    chatwoot_calls_inbox_id: int | None = None
    inboxes_config: Path | None = None
    default_inbox_mode: Literal["autopilot", "copilot", "off", "shadow"] = "autopilot"

    # Groq
    groq_api_key: SecretStr | None = None
    groq_model: str = "openai/gpt-oss-120b"
    groq_base_url: str = "https://api.groq.com"
    groq_timeout_s: float = 20.0

    # Speech
    speech_backend: Literal["azure", "local"] | None = None
    azure_speech_key: SecretStr | None = None
    azure_speech_region: str = ""
    azure_speech_endpoint: str = ""
    azure_speech_api_version: str = "2025-10-15"
    # "pt-PT=pt-PT-DuarteNeural,en=en-GB-RyanNeural": the voice per locale, over the built-in defaults
    speech_voices: str = ""
    # "en-GB,pt-PT,es-ES": the languages Azure identifies a voice note among; empty = its multilingual model
    voice_locales: str = ""
    whisper_model_path: Path | None = None  # local backend: a CTranslate2 Whisper folder (default: tiny.en)
    speech_cpu_threads: int = Field(default=2, ge=1)
    speech_max_audio_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    # Hosts besides CHATWOOT_URL's that a voice note's data_url may lead to (Chatwoot's public FRONTEND_URL
    # host, the S3/GCS/Azure Blob host its storage redirects to), comma-separated; "*.example.com" allowed.
    attachment_storage_hosts: str = ""
    voice_transcript_wait_s: float = Field(default=0.0, ge=0, le=120)  # wait for Chatwoot's own transcript
    voicemail_transcripts: bool | None = None  # transcribe Aircall voicemails; default: when Azure Speech is set
    voice_retention_days: int = Field(default=30, ge=1)  # `sidecar purge` drops voice data older than this
    # Longest voice note transcribed: longer ones are handed to a person without being decoded whole
    # (hours of low-bitrate Opus fit in SPEECH_MAX_AUDIO_BYTES and decode to gigabytes of PCM).
    voice_max_seconds: float = Field(default=600.0, gt=0, le=7200)

    # Aircall
    aircall_webhook_token: SecretStr | None = None
    aircall_api_id: SecretStr | None = None
    aircall_api_token: SecretStr | None = None
    aircall_api_url: str = "https://api.aircall.io"

    # Guesty
    guesty_webhook_secret: SecretStr | None = None
    guesty_client_id: SecretStr | None = None
    guesty_client_secret: SecretStr | None = None
    guesty_api_url: str = "https://open-api.guesty.com"

    # Knowledge and answering
    # The dense model: "use-multilingual" (packaged USE multilingual v3, 512-d, the default), "minilm" (packaged
    # English all-MiniLM-L6-v2 int8, 384-d) or "onnx" (a fastembed-layout folder at EMBEDDING_MODEL_PATH).
    # Unset while EMBEDDING_MODEL_PATH is set means "onnx". A store remembers its model: changing it means
    # deleting the store (or a new QDRANT_COLLECTION) and running `sidecar ingest` again.
    embedding_model: Literal["use-multilingual", "minilm", "onnx"] | None = None
    embedding_model_path: Path | None = None  # folder with onnx/model.onnx + tokenizer (minilm: overrides it)
    embedding_model_name: str | None = None  # default: the model's own name
    embedding_dim: int | None = Field(default=None, gt=0)  # default: the model's own vector size
    debounce_seconds: float = Field(default=2.0, ge=0)
    access_window_days_before: int = Field(default=2, ge=0)
    # Learning: a taught answer needs a second agent's `/approve` before the bot uses it.
    learn_require_approval: bool = False
    # Urgent alerts (lock-outs, leaks, fire, gas, no heating, injuries), in every inbox mode.
    urgent_label: str = "urgent"
    urgent_team_id: int | None = None  # the Chatwoot team assigned to an urgent conversation
    urgent_webhook_url: str = ""  # an on-call pager's URL; we POST a JSON summary to it
    # Where reports for the team go as private notes (a conversation in an internal inbox); unset: logs only.
    report_conversation_id: int | None = None
    # The in-conversation identity check (confirmation code + last name): failed attempts allowed per contact
    # and per booking within the window, after which the bot hands off and the check stays locked.
    verify_max_attempts: int = Field(default=5, ge=1)
    verify_window_hours: float = Field(default=24.0, gt=0)

    # Intake and jobs
    max_body_bytes: int = Field(default=1_000_000, gt=0)
    # How long a webhook waits for a pooled connection and its insert before the delivery goes to the spool.
    intake_db_wait_s: float = Field(default=1.0, gt=0, le=4)
    spool_dir: Path = Path("data/spool")  # verified deliveries kept while Postgres is unavailable (a volume)
    payload_retention_days: int = Field(default=90, ge=0)  # finished events' payloads become a stub; 0: keep
    job_max_attempts: int = Field(default=5, ge=1)
    job_backoff_base_s: float = Field(default=2.0, ge=0)
    worker_concurrency: int = Field(default=8, ge=1, le=256)
    job_timeout_s: float = Field(default=300.0, gt=0)  # a handler still running after this is cancelled
    job_max_crashes: int = Field(default=3, ge=1)  # claims that died with their worker before the event fails
    job_lease_s: float = Field(default=15.0, gt=0)  # a claim not renewed this long is a dead worker's
    worker_shutdown_grace_s: float = Field(default=5.0, ge=0)  # on SIGTERM, running jobs get this long
    # A post whose outcome is unknown is read back once its attempt is this old (the request timeout's margin).
    reply_settle_s: float = Field(default=25.0, ge=0)
    sweep_interval_s: float = Field(default=5.0, gt=0)
    sweep_grace_s: float = Field(default=10.0, ge=0)
    log_level: str = "INFO"
    # Webhook rate limits (bot.service.ratelimit); 0 turns a limit off.
    rate_limit_per_ip: float = Field(default=20.0, ge=0)  # requests/s without credentials, per address
    rate_limit_per_source: float = Field(default=200.0, ge=0)  # requests/s with credentials, per route
    rate_limit_failure_cost: float = Field(default=10.0, ge=0)  # tokens a failed verification costs its address

    # Operations: `sidecar chatwoot setup`, `sidecar doctor` and the agent panel (a Chatwoot Dashboard App)
    chatwoot_admin_token: SecretStr | None = None  # an administrator's user token, for setup and doctor only
    sidecar_webhook_url: str = ""  # the bot's URL as Chatwoot reaches it: http(s)://<sidecar>/webhooks/chatwoot
    panel_token: SecretStr | None = None  # per-install token of the panel's data endpoint (setup makes one)
    chatwoot_frontend_url: str = ""  # Chatwoot as agents' browsers reach it, when CHATWOOT_URL is internal

    @field_validator(
        "chatwoot_url",
        "groq_base_url",
        "aircall_api_url",
        "guesty_api_url",
        "azure_speech_endpoint",
        "qdrant_url",
        "sidecar_webhook_url",
        "chatwoot_frontend_url",
    )
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL")
        return value

    @field_validator("guesty_webhook_secret")
    @classmethod
    def _svix_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value() and not value.get_secret_value().startswith("whsec_"):
            raise ValueError("must start with whsec_")
        return value

    @model_validator(mode="after")
    def _speech_backend(self) -> Settings:
        if self.speech_backend is None:
            self.speech_backend = "azure" if self.azure_speech_key else "local"
        if self.voicemail_transcripts is None:
            self.voicemail_transcripts = bool(self.azure_speech_key)
        if self.speech_backend == "azure" and not self.azure_speech_key:
            raise ValueError("AZURE_SPEECH_KEY: SPEECH_BACKEND=azure needs a key")
        if self.speech_backend == "azure" and not (self.azure_speech_region or self.azure_speech_endpoint):
            raise ValueError("AZURE_SPEECH_REGION: set a region or AZURE_SPEECH_ENDPOINT for Azure Speech")
        return self

    @model_validator(mode="after")
    def _embedding_model(self) -> Settings:
        if self.embedding_model is None:
            self.embedding_model = "onnx" if self.embedding_model_path else "use-multilingual"
        if self.embedding_model == "onnx" and not self.embedding_model_path:
            raise ValueError("EMBEDDING_MODEL_PATH: EMBEDDING_MODEL=onnx needs the model folder (onnx/model.onnx)")
        return self

    # Small helpers so callers never unwrap secrets by hand.
    def secret(self, name: str) -> str | None:
        value = getattr(self, name)
        if value is None:
            return None
        raw = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        return raw or None

    @property
    def database_dsn(self) -> str:
        return self.database_url.get_secret_value()

    @property
    def prepare_threshold(self) -> int | None:
        """psycopg's prepare_threshold for our connections: 0 prepares on first use, None never."""
        return 0 if self.database_prepared_statements else None

    @property
    def chatwoot_configured(self) -> bool:
        return bool(self.chatwoot_url and self.chatwoot_account_id and self.secret("chatwoot_bot_token"))


def _read_secret_files(environ: dict[str, str]) -> dict[str, str]:
    """Resolve NAME_FILE variables into NAME values (Docker secrets)."""
    resolved: dict[str, str] = {}
    for name in SECRET_NAMES:
        path = environ.get(f"{name}_FILE")
        if path and not environ.get(name):
            try:
                resolved[name] = Path(path).read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    f"{name}_FILE: cannot read {path} ({exc.strerror}); mount the secret or unset it"
                ) from exc
    return resolved


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read and validate settings; raise ConfigError naming the first bad variable."""
    env = dict(os.environ if environ is None else environ)
    env.update(_read_secret_files(env))
    # Empty strings mean "unset" for optional values, as operators often write VAR= in .env files.
    cleaned = {k: v for k, v in env.items() if v != ""}
    try:
        return Settings.model_validate({k.lower(): v for k, v in cleaned.items() if k.lower() in Settings.model_fields})
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = err.get("loc") or ()
        msg = str(err.get("msg", "invalid"))
        if loc:
            name = str(loc[0]).upper()
        elif ":" in msg:  # model-level check: "NAME: reason"
            name, _, msg = msg.removeprefix("Value error, ").partition(": ")
        else:
            name = "configuration"
        msg = msg.removeprefix("Value error, ")
        fix = HOW_TO_FIX.get(name, "")
        lines.append(f"{name}: {msg}" + (f"; {fix}" if fix else ""))
    return "invalid configuration:\n  " + "\n  ".join(lines)
