# The two commands a new machine needs (each installs what is missing first):
#   make run    the full pipeline on the simulated bench
#   make test   the test suite
.PHONY: run test bench bench-segmentation bench-streams lock clean

run:
	scripts/env.sh python -m guidewire_ros.run_pipeline $(ARGS)

test:
	scripts/env.sh python -m pytest -q test $(ARGS)

bench:
	scripts/env.sh python bench/bench_frame.py

bench-streams:
	scripts/env.sh python bench/bench_ros_streams.py $(ARGS)

bench-segmentation:
	scripts/env.sh python bench/bench_segmentation.py $(ARGS)

# Re-pin after changing dependencies: freeze the current venv into requirements.lock.
lock:
	scripts/env.sh python scripts/freeze.py > requirements.lock.new && mv requirements.lock.new requirements.lock

clean:
	rm -rf build install log
