"""The segmenter a long-running process (the segmentation node) serves frames with.

With the compiled backend it loads the compiled model from the cache when it is built;
the first time on a machine it serves frames with eager PyTorch while a child process
builds the model (ensure_compiled_command, a minute or two) and switches over when it
is ready, with one reference swap: a frame in flight finishes on the eager model.
"""
from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

from guidewire.segmentation.backends import check_settings, ensure_compiled_command
from guidewire.segmentation.cache import cached_compiled_path
from guidewire.segmentation.checkpoint import WeightsError
from guidewire.segmentation.inference import Segmenter


class ServedSegmenter:
    """`segmenter` is the model to segment the next frame with; `compile_error` says why the
    compiled one, if asked for, is not it. WeightsError or ValueError when nothing can serve."""

    def __init__(self, weights: str | Path, backend: str, window: int, threads: int, precision: str, device: str,
                 info: Callable[[str], None], error: Callable[[str], None], preprocessing: str | None = None,
                 wire_width_px: float | None = None, test_time_flips: bool = False):
        # All settings checked before the eager model stands in for a compiled one being built.
        check_settings(backend, window, precision, device)
        self.settings = dict(weights=weights, window=window, threads=threads, precision=precision,
                             preprocessing=preprocessing, wire_width_px=wire_width_px,
                             test_time_flips=test_time_flips)
        self.backend, self.info, self.error = backend, info, error
        self.segmenter = Segmenter(backend="torch" if backend == "compiled" else backend, device=device,
                                   **self.settings)
        self.compile_error = ""
        self.build_process: subprocess.Popen | None = None
        self.build_lock, self.closed = threading.Lock(), False

    def start(self) -> None:
        """Load or start building the compiled model (nothing for the other backends). Call it last
        while setting up: a stop signal before it must not leave a build that nobody close()s."""
        if self.backend != "compiled":
            return
        settings = self.settings
        if cached_compiled_path(settings["weights"], settings["window"], settings["precision"]).is_file():
            self._switch_to_compiled()  # a built package loads in seconds: use it from the first frame
        else:
            self.info("building the compiled model; eager PyTorch serves frames meanwhile")
            threading.Thread(target=self._build_then_switch, daemon=True).start()

    def _build_then_switch(self) -> None:
        settings = self.settings
        command = ensure_compiled_command(settings["weights"], settings["window"], settings["precision"],
                                          settings["threads"])
        with self.build_lock:
            if self.closed:
                return
            self.build_process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                  text=True)
        output, errors = self.build_process.communicate()
        if self.closed:
            return  # close() stopped it
        if self.build_process.returncode:
            reason = (errors.strip().splitlines() or [f"exit status {self.build_process.returncode}"])[-1]
            return self._compiled_unavailable(f"build failed: {reason}")
        self.info(output.strip())
        self._switch_to_compiled()

    def _switch_to_compiled(self) -> None:
        started = time.monotonic()
        try:
            compiled = Segmenter(backend="compiled", **self.settings)
        except (WeightsError, RuntimeError) as error:
            return self._compiled_unavailable(str(error))
        self.segmenter = compiled
        self.info(f"compiled model ready after {time.monotonic() - started:.0f} s")

    def _compiled_unavailable(self, reason: str) -> None:
        self.compile_error = reason
        self.error(f"compiled backend unavailable, staying on eager PyTorch: {reason}")

    def close(self) -> None:
        """Stop a build still running, so that no compiler outlives the process."""
        with self.build_lock:  # a build starting while the process stops must not escape
            self.closed = True
            if self.build_process is not None and self.build_process.poll() is None:
                self.build_process.terminate()
