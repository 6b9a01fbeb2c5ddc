# The two commands a user needs: `make lab` (bring up the lab fleet and converge it) and
# `make test` (lint, unit tests, every molecule scenario, end-to-end tests on the lab).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(abspath $(VENV))/bin/python
BIN := $(abspath $(VENV))/bin
INVENTORY ?= inventories/lab
PREFECT_VERSION := $(shell sed -n 's/^fleet_prefect_version: "\(.*\)"/\1/p' group_vars/all/fleet.yml)
# Colour unless in CI or told otherwise (the tests run make with ANSIBLE_FORCE_COLOR=0 and read the output).
ANSIBLE_FORCE_COLOR ?= $(if $(CI),0,1)
ANSIBLE_ENV := ANSIBLE_FORCE_COLOR=$(ANSIBLE_FORCE_COLOR) PATH="$(BIN):$$PATH"
# The fleet's own collection of modules.
COLLECTION := collections/ansible_collections/prefect_fleet/prefect
# Each role's molecule scenarios, as role/scenario.
MOLECULE_SCENARIOS ?= $(patsubst roles/%/molecule.yml,%,$(subst /molecule/,/,$(wildcard roles/*/molecule/*/molecule.yml)))
# Scenarios run two at a time (each a fleet of its own containers); the longest start first.
MOLECULE_JOBS ?= 2
# Each pytest run keeps a copy of its output here: `make test` runs parts side by side and prints
# each whole when it ends, so one part's failure may scroll away above another's output; at its end
# `make test` prints every run's failures again (tools/test-failures.sh).
TEST_LOGS := $(CURDIR)/.cache/test-logs
KEEP_LOG = 2>&1 | { mkdir -p $(TEST_LOGS) && tee $(TEST_LOGS)/$@.log; }
MOLECULE_LONGEST := prefect_worker/cloud prefect_worker/default dask_swarm/default prefect_server/postgresql \
  docker_swarm/default prefect_objects/default haproxy/default prefect_server/default

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

.PHONY: host-deps
host-deps: ## Install the controller's system packages if missing (Debian)
	@missing=""; for p in docker.io debootstrap openssh-client git make tar; do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; apt-get update -q; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; fi

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create the controller venv from requirements.txt

.PHONY: docker
docker: host-deps ## Start the Docker engine unless one runs
	lab/ensure-docker.sh

.PHONY: image
image: docker ## Build (or reuse) the lab base image
	@# Written whole or not at all (through a temporary file of this make's own): scenarios and labs
	@# started side by side read it, and two makes side by side may check the image at once.
	mkdir -p .cache && lab/build-image.sh > .cache/lab-image.$$$$ && mv .cache/lab-image.$$$$ .cache/lab-image

.PHONY: wheelhouse
wheelhouse: venv ## Build (or reuse) the hosts' wheelhouse
	lab/build-wheelhouse.sh $(PREFECT_VERSION) $(PY) >/dev/null

.PHONY: lab
lab: venv image wheelhouse ## Bring up the lab fleet, converge site.yml (which registers the deployments), run the flows
	$(ANSIBLE_ENV) $(BIN)/ansible-playbook -i $(INVENTORY) lab/up.yml -e lab_image=$$(cat .cache/lab-image)
	$(ANSIBLE_ENV) $(BIN)/ansible-playbook -i $(INVENTORY) lab/git-remote.yml
	$(ANSIBLE_ENV) $(BIN)/ansible-playbook -i $(INVENTORY) site.yml
	$(ANSIBLE_ENV) $(BIN)/ansible-playbook -i $(INVENTORY) lab/report.yml
	$(ANSIBLE_ENV) $(PY) -m lab.flowruns $(INVENTORY)

.PHONY: sync
sync: venv ## Sync on push: every checkout of a branch's environments now, and its deployments (ARGS='-e branch=main')
	$(ANSIBLE_ENV) $(BIN)/ansible-playbook -i $(INVENTORY) playbooks/sync.yml $(ARGS)

.PHONY: deploy
deploy: venv ## Register every environment's deployments from its checkout now (normally done after each sync)
	$(ANSIBLE_ENV) $(BIN)/ansible-playbook -i $(INVENTORY) playbooks/deploy_flows.yml

.PHONY: check-flows
check-flows: venv ## Check flows/deployments.yml as the hosts will, against INVENTORY's host labels (before a push)
	@labels=$$($(BIN)/ansible-inventory -i $(INVENTORY) --list | $(PY) -c 'import json, sys; i = json.load(sys.stdin); \
	  print(",".join(sorted({l for h in i.get("prefect_workers", {}).get("hosts", []) for l in i["_meta"]["hostvars"][h].get("fleet_labels", [])})))'); \
	PYTHONPATH=host/src $(PY) -m prefect_fleet_host deploy --check flows --labels "$$labels"

.PHONY: status
status: venv ## The fleet's state as a table (ARGS=--json: as JSON); exit 2 when unhealthy
	@$(ANSIBLE_ENV) $(PY) tools/fleet-status.py -i $(INVENTORY) $(ARGS)

.PHONY: rolling-restart
rolling-restart: venv ## Restart the fleet host by host, losing no flow run (ARGS='--limit label_x -e drain=true')
	$(ANSIBLE_ENV) $(BIN)/ansible-playbook -i $(INVENTORY) playbooks/rolling_restart.yml $(ARGS)

.PHONY: converge-under-load
converge-under-load: venv ## On the lab: converge site.yml under a steady load of runs; every run must complete (a hand-over, an upgrade)
	$(ANSIBLE_ENV) $(PY) -m lab.converge_under_load $(INVENTORY)

.PHONY: lab-down
lab-down: venv ## Remove the lab fleet
	$(ANSIBLE_ENV) $(BIN)/ansible-playbook -i $(INVENTORY) lab/down.yml

.PHONY: lint
lint: venv sanity ## ansible-lint (production profile), yamllint, ruff, ansible-test sanity
	$(BIN)/yamllint --strict .
	$(ANSIBLE_ENV) $(BIN)/ansible-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

.PHONY: sanity
sanity: venv ## ansible-test sanity on the prefect_fleet.prefect collection
	@# ansible-test bootstraps pip in its virtualenvs from a download; tools/ansible-test-get-pip.py
	@# does it with ensurepip where that host is out of reach (docs/facts.md).
	@pip=$$($(PY) -c "import ansible_test, pathlib, re; print(re.search(r\"pip='([0-9.]+)'\", (pathlib.Path(ansible_test.__file__).parent / '_internal/python_requirements.py').read_text())[1])"); \
	cache=$$HOME/.ansible/test/cache/get_pip_$${pip//./_}.py; \
	[ -f $$cache ] || install -D -m 0644 tools/ansible-test-get-pip.py $$cache
	cd $(COLLECTION) && PATH="$(BIN):$$PATH" $(BIN)/ansible-test sanity --local --color no \
	  --python $$($(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])')

.PHONY: unit
unit: unit-tests integration-tests ## Unit tests, the collection's among them, and integration tests against a real server on loopback (no containers)

# Two runs, so that `make test` keeps both cores busy beside lint (each pytest uses one).
.PHONY: unit-tests integration-tests
unit-tests: venv wheelhouse
	$(ANSIBLE_ENV) $(BIN)/pytest tests/unit $(COLLECTION)/tests/unit $(KEEP_LOG)

integration-tests: venv wheelhouse
	$(ANSIBLE_ENV) $(BIN)/pytest tests/integration $(KEEP_LOG)

.PHONY: molecule
molecule: venv image wheelhouse ## Every molecule scenario of every role, MOLECULE_JOBS (2) at a time
	$(ANSIBLE_ENV) MOLECULE=$(BIN)/molecule MOLECULE_JOBS=$(MOLECULE_JOBS) MOLECULE_FAILURE_DIR=$(TEST_LOGS) \
	  MOLECULE_IMAGE=$$(cat .cache/lab-image) \
	  PREFECT_FLEET_WHEELHOUSE=$(CURDIR)/.cache/wheelhouse/prefect-$(PREFECT_VERSION).tar \
	  tools/molecule-all.sh $(filter $(MOLECULE_SCENARIOS),$(MOLECULE_LONGEST)) \
	  $(filter-out $(MOLECULE_LONGEST),$(MOLECULE_SCENARIOS))

.PHONY: e2e
e2e: e2e-inventory e2e-lab ## Every end-to-end test: a fleet from an inventory of its own, then the lab's

.PHONY: e2e-inventory
e2e-inventory: venv image wheelhouse ## End to end on a fleet of its own (three environments, a shared label): up, routed, pruned, down
	$(ANSIBLE_ENV) $(BIN)/pytest tests/inventory --durations=5 $(KEEP_LOG)

.PHONY: e2e-lab
e2e-lab: lab ## End-to-end tests on the lab fleet (brings it up first)
	$(MAKE) --no-print-directory e2e-lab-tests

.PHONY: e2e-lab-tests
e2e-lab-tests: venv ## The lab's end-to-end tests alone, on a lab that is up (make lab)
	$(ANSIBLE_ENV) LAB_INVENTORY=$(INVENTORY) $(BIN)/pytest tests/lab -m "not long" --durations=15 $(KEEP_LOG)

.PHONY: e2e-long
e2e-long: lab ## The end-to-end tests too long for CI (restarts under a run every 2 s, a requirements push), about 30 min
	$(ANSIBLE_ENV) LAB_INVENTORY=$(INVENTORY) $(BIN)/pytest tests/lab -m long

.PHONY: e2e-ha
e2e-ha: venv ## The HA lab (inventories/lab-ha) under load: a replica, then its host, stopped; every replica restarted twice (about 20 min)
	$(MAKE) --no-print-directory lab INVENTORY=inventories/lab-ha
	$(ANSIBLE_ENV) LAB_INVENTORY=inventories/lab-ha $(BIN)/pytest tests/lab_ha -s --durations=5

.PHONY: test
test: ## The whole suite: lint, unit, molecule, end-to-end (independent parts side by side)
	@# Lint beside the unit and the integration tests (each keeps about one core busy), then the
	@# molecule scenarios two at a time, then the lab's bring-up alone, then the lab's end-to-end
	@# tests with the fleet of its own inventory (tests/inventory) in their background: its
	@# controller at nice 19, its containers at 1/64 of Docker's CPU weight, so that it runs on what
	@# the lab's tests leave idle (their waits: a third of the machine) and their bounds still
	@# measure the lab. Each part's output is printed whole when it ends, and each phase prints how
	@# long it took. Measurements, and the layouts tried before: docs/design-notes.md.
	@rm -rf $(TEST_LOGS); trap 'tools/test-failures.sh $$? $(TEST_LOGS)' EXIT; \
	started=$$(date +%s); phase() { echo "test: $$1 took $$(( $$(date +%s) - started )) s"; started=$$(date +%s); }; \
	$(MAKE) --no-print-directory -j3 --output-sync=target lint unit-tests integration-tests; phase "lint and unit"; \
	$(MAKE) --no-print-directory molecule; phase "molecule"; \
	$(MAKE) --no-print-directory lab; phase "the lab's bring-up"; \
	$(MAKE) --no-print-directory -j2 --output-sync=target e2e-lab-tests e2e-inventory-background; \
	phase "tests/lab, and tests/inventory in their background"

.PHONY: e2e-inventory-background
e2e-inventory-background: venv image wheelhouse
	nice -n 19 $(MAKE) --no-print-directory e2e-inventory

.PHONY: bench
bench: venv image wheelhouse ## Converge timings: fresh, no-op, pipelining off vs on, no-op at 3 and 12 worker hosts
	$(ANSIBLE_ENV) $(PY) -m benchmarks.converge

.PHONY: bench-server
bench-server: venv image wheelhouse ## Server capacity: polling workers held by SQLite, PostgreSQL, two HA replicas (fleets of its own)
	$(ANSIBLE_ENV) $(PY) -m benchmarks.server

.PHONY: bench-workers
bench-workers: venv ## On the lab (make lab first): submit-to-Running latency vs defaults, push propagation, cost of a run
	$(ANSIBLE_ENV) $(PY) -m benchmarks.workers latency 20
	$(ANSIBLE_ENV) $(PY) -m benchmarks.workers propagation 10
	$(ANSIBLE_ENV) $(PY) -m benchmarks.workers startcost 10

.PHONY: bench-sync
bench-sync: venv ## On the lab (make lab first): push -> every checkout and -> deployments, sync playbook vs timer alone
	$(ANSIBLE_ENV) $(PY) -m benchmarks.sync 5 $(INVENTORY)

.PHONY: bench-tls
bench-tls: venv ## On the lab (make lab first): the API's TLS front vs plain HTTP, kept-alive and with a handshake per request
	$(ANSIBLE_ENV) $(PY) -m benchmarks.tls 20

.PHONY: bench-venv
bench-venv: venv ## On the lab (make lab first): the flows' venv built by pip and by uv, alternating on one worker host
	$(ANSIBLE_ENV) $(PY) -m benchmarks.venv 3 $(INVENTORY)

.PHONY: bench-dask
bench-dask: venv ## On the lab (make lab first): 1,000 tiny tasks swarm vs in-process, 200 x 0.2 s on one worker vs all
	$(ANSIBLE_ENV) $(PY) -m benchmarks.dask 2

.PHONY: bench-dask-tls
bench-dask-tls: venv ## Dask's TLS against plain TCP, two local clusters side by side (no lab): tiny tasks, 8 MiB results
	$(PY) -m benchmarks.dask_tls 5

.PHONY: bench-restart
bench-restart: venv ## On the lab (make lab first): rolling restart per host (drain, restart) and pickup during vs outside it
	$(ANSIBLE_ENV) $(PY) -m benchmarks.restart $(INVENTORY)
