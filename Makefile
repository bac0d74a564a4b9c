# The two commands a newcomer needs; see README.md.
.PHONY: run test load fuzz fuzz-api bench sam-build sam-invoke sam-api clean

PORT ?= 9000
export PORT

run:  ## serve the function on 127.0.0.1:$(PORT) with its own local DynamoDB/KMS, print a working curl
	@tools/run.sh

test:  ## every test: unit, integration against moto, events through the runtime loop, template checks
	@tools/test.sh

load:  ## 2,000 creates from 32 clients against a running `make run` (same PORT)
	@"$$(tools/venv.sh local)/python" tools/load.py --url http://127.0.0.1:$(PORT) --run-dir .run/make-run

fuzz-api:  ## schemathesis with 2,000 examples per phase (random seed) against the function; EXAMPLES=... to change
	@tools/fuzz-api.sh $(or $(EXAMPLES),2000)

fuzz:  ## cargo fuzz: each target FUZZ_SECONDS (default 300); not in CI
	@tools/fuzz.sh

bench:  ## the README's figures: init vs hello world, round trips, CPU, memory, package size
	@tools/bench.sh

sam-build:  ## sam build for deploying (cargo lambda, arm64 release); needs the aarch64-unknown-linux-gnu Rust target
	@PATH="$$(tools/venv.sh local):$$PATH" SAM_CLI_TELEMETRY=0 "$$(tools/venv.sh sam)/sam" build --beta-features

sam-invoke:  ## sam local invoke EVENT (default events/create-rest-api.json) with fresh credentials, against a local DynamoDB/KMS
	@tools/sam-local.sh invoke $(or $(EVENT),events/create-rest-api.json)

sam-api:  ## sam local start-api on SAM_PORT (default 3000) against a local DynamoDB/KMS, prints a working curl
	@tools/sam-local.sh api

clean:
	rm -rf target .venv .run
