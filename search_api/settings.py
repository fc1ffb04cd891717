"""Server settings: command-line flags override ``DANCESEARCH_*`` environment variables and defaults."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """Everything ``create_app`` needs; one instance per server."""

    model_config = SettingsConfigDict(env_prefix="DANCESEARCH_", extra="ignore")

    home: Path | None = Field(None, description="workspace (default: $DANCESEARCH_HOME or ./.dancesearch)")
    db: str | None = Field(None, description="catalog SQLAlchemy URL (default: HOME/catalog.sqlite)")
    run: Path | None = Field(None, description="model run folder (default: models/demo)")
    index_name: str = "default"
    milvus_uri: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    api_key: SecretStr | None = Field(None, description="required by routes that change server state")
    torch_threads: int | None = Field(1, ge=1, description="intra-op threads per text encoding (1: best under load)")
    faiss_threads: int | None = Field(1, ge=1, description="OpenMP threads per FAISS search (1: requests run in parallel)")
    cors_origins: list[str] = Field(default_factory=list, description="browser origins allowed to call the API")
    log_level: str = "info"
