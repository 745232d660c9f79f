"""Configuration: environment variables, Docker secrets and per-inbox behaviour."""

from config.settings import ConfigError, Settings, load_settings

__all__ = ["ConfigError", "Settings", "load_settings"]
