import numpy as np
import pytest

from guidewire.twin.cameras import CameraRenderer
from guidewire.twin.wire import GuidewireModel
from guidewire.twin.config import CameraConfig
from guidewire.geometry import triangulate


@pytest.fixture(scope="module")
def scene(default_config):
    state = GuidewireModel(default_config.guidewire, default_config.seed).state(3.0)
    renderers = [CameraRenderer(camera, default_config.seed) for camera in default_config.stereo]
    return state, renderers


def test_cameras_are_orthogonal_and_full_resolution(scene):
    _, (top, side) = scene
    assert (top.camera.width, top.camera.height) == (2048, 1536)
    assert abs(np.dot(top.camera.rotation[:, 2], side.camera.rotation[:, 2])) < 1e-9


def test_projected_ground_truth_lands_on_rendered_wire(scene):
    state, renderers = scene
    for renderer in renderers:
        image = renderer.render(state).astype(float)
        pixels = renderer.camera.project(state.centreline)
        u, v = np.rint(pixels).astype(int).T
        inside = (u >= 0) & (u < renderer.camera.width) & (v >= 0) & (v < renderer.camera.height)
        assert inside.mean() > 0.9
        on_wire = image[v[inside], u[inside]]
        # Sample the background well away from the wire (20 px along the image's rows).
        background = image[v[inside], np.clip(u[inside] + 20, 0, renderer.camera.width - 1)]
        off = image[np.clip(v[inside] + 20, 0, renderer.camera.height - 1), u[inside]]
        assert np.median(on_wire) < 0.6 * np.median(np.maximum(background, off))
        assert renderer.wire_coverage(state)[v[inside], u[inside]].min() > 0.5


@pytest.mark.parametrize("distortion", [(0, 0, 0, 0, 0), (-0.08, 0.02, 0.0005, -0.0003, 0.0)])
def test_stereo_triangulation_recovers_ground_truth(default_config, distortion):
    cameras = [CameraRenderer(CameraConfig(**{**camera.__dict__, "distortion": distortion}), 0).camera
               for camera in default_config.stereo]
    model = GuidewireModel(default_config.guidewire, default_config.seed)
    for time in (0.0, 5.0, 11.0):
        points = model.state(time).centreline
        recovered = triangulate(cameras[0], cameras[0].project(points), cameras[1], cameras[1].project(points))
        assert np.linalg.norm(recovered - points, axis=1).max() < 0.05e-3  # 0.05 mm


def test_noise_is_each_cameras_own_whichever_thread_renders_it(default_config):
    # OpenCV's noise generator is per thread: each frame is seeded from the camera's seed and
    # the frame's key, so a camera's frames repeat for its seed wherever and in whatever order
    # they are rendered, and the two cameras of a pair never share a noise field.
    from concurrent.futures import ThreadPoolExecutor

    state = GuidewireModel(default_config.guidewire, default_config.seed).state(3.0)
    top, side = (CameraRenderer(camera, default_config.seed) for camera in default_config.stereo)
    with ThreadPoolExecutor(2) as pool:
        in_threads = [pool.submit(r.render, state).result() for r in
                      (CameraRenderer(camera, default_config.seed) for camera in default_config.stereo)]
    here = [top.render(state), side.render(state)]
    for threaded, local in zip(in_threads, here):
        np.testing.assert_array_equal(threaded, local)
    noise = [image[:200, :200] - renderer.background[:200, :200] for image, renderer in zip(here, (top, side))]
    assert abs(np.corrcoef(noise[0].ravel(), noise[1].ravel())[0, 1]) < 0.05
    assert not np.array_equal(top.render(state, noise_key=[1]), here[0])  # each frame its own noise
    # The noise is a function of the frame's key (by default its time), not of what was rendered before.
    np.testing.assert_array_equal(CameraRenderer(default_config.stereo[0], default_config.seed).render(state), here[0])
