"""The public entry: coarse stage (optional) then test-time optimisation over all views."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from guidewire.registration.optimise import (
    RegistrationResult,
    RegistrationSettings,
    XrayView,
    better_start,
    optimise,
)
from guidewire.registration.volume import CTVolume


def register(views: Sequence[XrayView], ct: CTVolume, initial_pose: np.ndarray,
             settings: RegistrationSettings | None = None, progress_callback: Callable | None = None,
             cancel=None, coarse=None) -> RegistrationResult:
    """Registers a CT to 1-4 calibrated X-ray views.

    views: XrayView (image + ViewGeometry with the view's pose in the world); ct: CTVolume;
    initial_pose: 4x4 CT-to-world guess (metres); coarse: an optional guidewire.registration.coarse.
    CoarseRegressor whose prediction replaces the initial pose where it scores better on the views
    (it must have been trained on this CT and a C-arm layout like these views');
    progress_callback(dict) is called every iteration (stage, pixels, iteration, loss, ncc_per_view and
    pose, the iterate's 4x4 CT-to-world pose in metres), and after the coarse stage (stage 'coarse',
    pose, start: 'coarse' or 'initial');
    cancel: a threading.Event (or a callable returning True) that stops the optimisation, which then
    returns the best pose so far with converged=False and cancelled=True.

    Raises ViewError for a blank or mis-sized view and ValueError for a non-finite initial pose;
    a registration that does not reach a trustworthy minimum returns converged=False.
    """
    if not views:
        raise ValueError("register needs at least one view")
    start = time.perf_counter()
    initial = np.asarray(initial_pose, float)
    if initial.shape != (4, 4) or not np.all(np.isfinite(initial)):
        raise ValueError("initial pose must be a finite 4x4 matrix")
    if coarse is not None:
        # The network helps where the given pose is far off; where it is closer than the network's guess
        # (a pose from the plan, or views unlike its training renders), the given pose scores better.
        predicted = coarse.predict(views, initial)
        if better_start(ct, views, [predicted, initial], settings) == 0:
            initial, started = predicted, "coarse"
        else:
            started = "initial"
        if progress_callback is not None:
            progress_callback({"stage": "coarse", "pose": initial, "start": started})
    result = optimise(ct, views, initial, settings, progress_callback, cancel)
    result.seconds = time.perf_counter() - start
    return result
