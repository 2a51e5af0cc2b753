# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# llama-cpp-python compiles from source (minutes); the built wheel is kept here and reused.
WHEELS ?= $(HOME)/.cache/atende/wheels/$(if $(findstring CUDA,$(CMAKE_ARGS)),cuda,cpu)-noamx
LLAMA  := llama-cpp-python==0.3.36
# Built for this CPU, but without llama.cpp's AMX kernels: on Xeons that have AMX they crash on
# Q4_K models in the first decode (ggml-org/llama.cpp#20824); AVX-512 stays. --no-cache-dir:
# pip's own cache would hand back a wheel built with other flags.
NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
LLAMA_CMAKE := $(CMAKE_ARGS) -DCMAKE_C_FLAGS="$(NO_AMX)" -DCMAKE_CXX_FLAGS="$(NO_AMX)"

.PHONY: run test lint install assets browser clean-venv adapter adapter-negocios evidence \
	refusal-negocios

install: $(STAMP) assets

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# CPU torch first, so nothing pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	@mkdir -p $(WHEELS)
	@ls $(WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || { \
	  echo "Building $(LLAMA) once (several minutes); the wheel is cached in $(WHEELS)"; \
	  CMAKE_ARGS='$(LLAMA_CMAKE)' $(BIN)/python -m pip wheel -q --no-cache-dir --no-deps $(LLAMA) -w $(WHEELS); }
	$(BIN)/python -m pip install -q --find-links $(WHEELS) -e ".[dev]"
	@touch $(STAMP)

run: $(STAMP) assets
	$(BIN)/atende db upgrade
	$(BIN)/atende kb ingest demo/loja-aurora/docs
	$(BIN)/atende demo install
	@$(BIN)/atende demo logins
	$(BIN)/atende serve

# Two workers, a file each at a time: most of a test's time is a server or model answering.
test: $(STAMP) assets browser
	$(BIN)/pytest -n 2 --dist loadfile --no-loadscope-reorder

# The pages' front-end files come from the npm registry at the versions web/package-lock.json
# pins (with their integrity hashes), copied next to our own static files.
VENDOR := server/static/vendor
assets: $(VENDOR)/.stamp

$(VENDOR)/.stamp: web/package.json web/package-lock.json
	npm ci --prefix web --ignore-scripts --no-audit --no-fund --loglevel=error
	@mkdir -p $(VENDOR)
	cp web/node_modules/htmx.org/dist/htmx.min.js web/node_modules/htmx-ext-sse/dist/sse.min.js $(VENDOR)/
	@touch $@

# Pages are tested in Debian's Chromium (Playwright drives it; it downloads no browser).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "Debian chromium is not installed: the page tests will be skipped"

# The default LoRA adapter, reproduced: FaQuAD train -> LoRA -> GGUF -> calibrate -> FaQuAD dev
# (evidence floors, then FaQuAD's learned rule) and the demo shop, each against the version
# serving now and the extractive baseline -> gate on the demo shop -> models/adapters/faquad-$(V).
# Publishing happens only when `models compare` passes the gate. faquad-v5 was made with
# faquad-v4 serving; on a database that serves faquad-v5 already, run it as `make adapter
# V=v5b`: the gate then refuses a copy that is no better than itself and publishes nothing.
# Training takes about an hour on 2 CPU cores and minutes on a GPU (docs/finetuning.md: on a GPU machine).
FAQUAD  ?= ../shared/datasets/faquad
V       ?= v5
ADAPTER := faquad-$(V)
RESULTS := bench/results
FLOORS  ?= ATENDE_EVIDENCE_MODEL=floors ATENDE_RETRIEVAL_MIN_SCORE=1.668 ATENDE_RETRIEVAL_MIN_COVERAGE=0.5
EVIDENCE ?= models/evidence/faquad.json
LEARNED := ATENDE_EVIDENCE_MODEL=$(EVIDENCE) ATENDE_RETRIEVAL_TOP_K=2
adapter: $(STAMP)
	$(BIN)/atende finetune curate --out data/finetune/faquad-train --passages 0 --add-set $(FAQUAD)
	$(FLOORS) $(BIN)/atende finetune train finetune/configs/faquad.yaml --name $(ADAPTER) \
	  --set out=data/finetune/$(ADAPTER) --calibrate-on $(FAQUAD)
	$(FLOORS) $(BIN)/atende eval answers --set $(FAQUAD) --split dev --top-k 2 --model serving \
	  --model $(ADAPTER) --json $(RESULTS)/faquad-dev-answers-$(V).json
	$(LEARNED) $(BIN)/atende eval answers --set $(FAQUAD) --split dev --top-k 2 --model serving \
	  --model $(ADAPTER) --json $(RESULTS)/faquad-dev-answers-$(V)-learned.json \
	  --plot $(RESULTS)/faquad-dev-answers-$(V)-learned.png
	$(BIN)/atende eval answers --set demo/loja-aurora --top-k 2 --model base --model serving \
	  --model $(ADAPTER) --json $(RESULTS)/demo-answers-$(V).json \
	  --plot $(RESULTS)/demo-answers-$(V).png
	$(BIN)/atende models compare $(ADAPTER) --set demo/loja-aurora --top-k 2 \
	  --json $(RESULTS)/demo-gate-$(V).json --plot $(RESULTS)/demo-gate-$(V).png
	$(BIN)/atende finetune publish $(ADAPTER) --to models/adapters/$(ADAPTER)

# The businesses adapter: FaQuAD train plus the corpus's train businesses (their near-misses as
# refusals), structured units, refusal threshold chosen on the dev businesses; then each report
# business answered by faquad-v5 (serving) and the new version in every mode, in one run
# (docs/knowledge-base.md "The shipped default, measured"), tabulated and judged by
# bench/answer_modes.py; and FaQuAD dev. Training: about 50 minutes on 2 quiet CPU cores.
CORPUS  := corpus/atende-negocios
DEV     := $(addprefix $(CORPUS)/,academia-movimento bella-pele-cosmeticos farmacia-bem-estar imobiliaria-casa-certa)
REPORT  := clinica-vida-plena conecta-fibra moveis-lar-bonito protege-seguros
NV      ?= v7
adapter-negocios: $(STAMP)
	$(BIN)/atende finetune curate --out data/finetune/negocios-train --passages 0 \
	  --add-set $(CORPUS) --add-set $(FAQUAD)
	$(BIN)/atende finetune train finetune/configs/negocios.yaml --name negocios-$(NV) \
	  --set out=data/finetune/negocios-$(NV) --budget 0.08 $(addprefix --calibrate-on ,$(DEV))
	for b in $(REPORT); do $(BIN)/atende eval answers --set $(CORPUS)/$$b --model serving \
	  --model negocios-$(NV) --max-tokens 160 --modes \
	  --json $(RESULTS)/answers-corpus-test-$$b-$(NV).json || exit 1; done
	$(BIN)/python bench/answer_modes.py $(addprefix $(RESULTS)/answers-corpus-test-,$(addsuffix -$(NV).json,$(REPORT))) \
	  --json $(RESULTS)/answers-corpus-test-modes-$(NV).json
	$(FLOORS) $(BIN)/atende eval answers --set $(FAQUAD) --split dev --top-k 2 --model serving \
	  --model negocios-$(NV) --json $(RESULTS)/faquad-dev-answers-negocios-$(NV).json

# The evidence rule and the serving version's refusal threshold, chosen together on the dev
# businesses within one budget of wrong refusals, reported on the test ones; written into the
# bundled rule and the version's version.json (docs/knowledge-base.md "Chosen together").
refusal-negocios: $(STAMP)
	ATENDE_DATA_DIR=$$(mktemp -d) $(BIN)/python -m bench.joint_refusal --budget 0.08 \
	  --save-rule models/evidence/negocios.json \
	  --save-threshold models/adapters/negocios-$(NV)/version.json \
	  --json $(RESULTS)/negocios-joint-refusal.json

# FaQuAD's learned evidence rule (rag/evidence.py), fitted on its train split and checked on dev
# (`make adapter` answers FaQuAD dev behind it). It fits FaQuAD's formal questions: a company
# fits its own (docs/knowledge-base.md: the learned rule).
evidence: $(STAMP)
	$(BIN)/atende eval retrieval --set $(FAQUAD) --split train --top-k 2 --budget 0.05 \
	  --min-score 1.668 --min-coverage 0.5 --fit-evidence $(EVIDENCE)
	$(BIN)/atende eval retrieval --set $(FAQUAD) --split dev --top-k 2 --evidence $(EVIDENCE) \
	  --min-score 1.668 --min-coverage 0.5 --json $(RESULTS)/faquad-dev-evidence.json

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

clean-venv:
	rm -rf $(VENV)
