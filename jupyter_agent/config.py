"""Provider resolution: OpenAI, Azure OpenAI, any Responses-compatible server, or the embedded model.

``resolve_provider`` looks at explicit arguments first, then the environment (and a ``.env``
file in the working directory, which never overrides real environment variables):
``OPENAI_API_KEY`` (+ ``OPENAI_BASE_URL``) -> OpenAI; ``AZURE_OPENAI_API_KEY`` +
``AZURE_OPENAI_ENDPOINT`` -> Azure (``api-key`` header, deployment name as model,
``/openai/v1`` base); otherwise the embedded local model.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ._version import __version__

OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_OPENAI_MODEL = "gpt-5.2"
USER_AGENT = f"jupyter_agent/{__version__} (Python {platform.python_version()}; {platform.system()})"
ORIGINATOR = "jupyter_agent"

_AZURE_MARKERS = (
    "openai.azure.",
    "cognitiveservices.azure.",
    "aoai.azure.",
    "azure-api.",
    "azurefd.",
    "windows.net/openai",
)


class Secret:
    """A string that never shows itself in repr, str, logs or widget state."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        from .transport.redact import protect_secret

        protect_secret(value)  # also out of httpcore/websockets DEBUG logs, should a server echo it

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> Any:  # never pickled into anything persistent
        raise TypeError("Secret values cannot be pickled")


def is_azure_responses_base_url(base_url: str | None, provider_name: str | None = None) -> bool:
    """Spec §9 detection: provider named ``azure`` or an Azure-looking base URL."""
    if provider_name and provider_name.strip().lower() == "azure":
        return True
    if not base_url:
        return False
    lower = base_url.lower()
    return any(marker in lower for marker in _AZURE_MARKERS)


def load_dotenv_values(path: str | os.PathLike[str] = ".env") -> dict[str, str]:
    """Parse a ``.env`` file (KEY=VALUE, ``export`` prefix, quotes, comments)."""
    p = Path(path)
    if not p.is_file():
        return {}
    values: dict[str, str] = {}
    for raw in p.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        if key:
            values[key] = value
    return values


def environment(env: Mapping[str, str] | None = None, dotenv: str | None = ".env") -> dict[str, str]:
    """Environment variables with ``.env`` values filled in underneath."""
    merged = dict(load_dotenv_values(dotenv)) if dotenv else {}
    merged.update(os.environ if env is None else env)
    return merged


@dataclass
class Provider:
    """Where and how to reach a Responses API."""

    name: str  # "openai", "azure", "compatible", "local"
    base_url: str
    api_key: Secret | None = None
    default_model: str = DEFAULT_OPENAI_MODEL
    supports_websockets: bool = False
    extra_headers: dict[str, str] = field(default_factory=dict)
    #: Adapts a standard request body for servers that need it (the embedded model).
    request_adapter: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: Async-free preparation run once on the agent loop (in a worker thread), e.g. start the local model.
    prepare: Callable[[], str] | None = None
    display_name: str = ""

    @property
    def is_azure(self) -> bool:
        return self.name == "azure" or is_azure_responses_base_url(self.base_url)

    @property
    def responses_url(self) -> str:
        return self.base_url.rstrip("/") + "/responses"

    def auth_headers(self) -> dict[str, str]:
        if not self.api_key:
            return {}
        if self.name == "azure":
            return {"api-key": self.api_key.get()}
        return {"Authorization": f"Bearer {self.api_key.get()}"}

    def describe(self) -> str:
        return self.display_name or f"{self.name} ({self.base_url})"


def _azure_base(endpoint: str) -> str:
    endpoint = endpoint.rstrip("/")
    if endpoint.endswith("/openai/v1"):
        return endpoint
    if endpoint.endswith("/openai"):
        return endpoint + "/v1"
    return endpoint + "/openai/v1"


def _azure_explicit_base(base_url: str) -> str:
    """An explicit Azure ``base_url``: a bare resource endpoint (or ``.../openai``) gets ``/openai/v1``;
    any other path (e.g. an API gateway route) is used as given."""
    url = base_url.rstrip("/")
    path = urlsplit(url).path
    if not path or url.endswith("/openai"):
        return _azure_base(url)
    return url


def local_provider() -> Provider:
    """The embedded SmolLM2 model served by xllamacpp (started on first use)."""
    from .providers import local

    provider = Provider(
        name="local",
        base_url="",  # filled by prepare()
        default_model=local.MODEL_ALIAS,
        supports_websockets=False,
        extra_headers=dict(local.LOCAL_REQUEST_HEADERS),
        request_adapter=local.adapt_request,
        display_name="embedded local model (SmolLM2-135M-Instruct via xllamacpp)",
    )

    def prepare() -> str:
        provider.base_url = local.LocalModel.shared().ensure_started()
        return provider.base_url

    provider.prepare = prepare
    return provider


def resolve_provider(
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    provider: str | None = None,
    env: Mapping[str, str] | None = None,
    dotenv: str | None = ".env",
) -> Provider:
    """Pick the provider from explicit arguments, then the environment (see module doc)."""
    values = environment(env, dotenv)
    org = {
        k: v
        for k, v in (
            ("OpenAI-Organization", values.get("OPENAI_ORGANIZATION")),
            ("OpenAI-Project", values.get("OPENAI_PROJECT")),
        )
        if v
    }
    name = (provider or "").strip().lower() or None
    if name == "local":
        return local_provider()
    if name == "azure" or (name is None and base_url and is_azure_responses_base_url(base_url)):
        key = api_key or values.get("AZURE_OPENAI_API_KEY")
        endpoint = base_url or values.get("AZURE_OPENAI_ENDPOINT")
        if not endpoint:
            raise ValueError("Azure needs a base_url or AZURE_OPENAI_ENDPOINT")
        return Provider(
            name="azure",
            base_url=_azure_explicit_base(base_url) if base_url else _azure_base(endpoint),
            api_key=Secret(key) if key else None,
            default_model=values.get("AZURE_OPENAI_DEPLOYMENT", DEFAULT_OPENAI_MODEL),
            supports_websockets=True,
            display_name="Azure OpenAI",
        )
    if base_url or name in ("openai", "compatible"):
        url = (base_url or values.get("OPENAI_BASE_URL") or OPENAI_BASE_URL).rstrip("/")
        key = api_key if api_key is not None else values.get("OPENAI_API_KEY")
        official = url.startswith(OPENAI_BASE_URL)
        return Provider(
            name="openai" if official else (name or "compatible"),
            base_url=url,
            api_key=Secret(key) if key else None,
            supports_websockets=official or name == "openai",
            extra_headers=org if official else {},
            display_name="OpenAI" if official else f"Responses-compatible server at {url}",
        )
    if values.get("OPENAI_API_KEY"):
        url = (values.get("OPENAI_BASE_URL") or OPENAI_BASE_URL).rstrip("/")
        official = url.startswith(OPENAI_BASE_URL)
        return Provider(
            name="openai" if official else "compatible",
            base_url=url,
            api_key=Secret(values["OPENAI_API_KEY"]),
            supports_websockets=official,
            extra_headers=org if official else {},
            display_name="OpenAI" if official else f"Responses-compatible server at {url}",
        )
    if values.get("AZURE_OPENAI_API_KEY") and values.get("AZURE_OPENAI_ENDPOINT"):
        return resolve_provider(provider="azure", env=values, dotenv=None)
    return local_provider()
