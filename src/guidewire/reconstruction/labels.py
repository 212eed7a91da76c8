"""Stereo label maker: a recorded bag of the two cameras and the array becomes a set of cases.

    python -m guidewire.reconstruction.labels BAG OUT_DIR [--bench-config config/bench.yaml]

For each top-camera image with a side-camera image of the same stamp (within
--slop), both views are segmented (classical dark-wire segmenter) and the wire
triangulated (stereo.py); the nearest array frame and robot state within
--slop complete a case folder in the format of `python -m
guidewire.reconstruction` (case.py) with the triangulated wire as its label
(label.yaml: centreline in the bench frame, m). The cameras' intrinsics come
from their recorded CameraInfo, their mounting poses and the wire's magnets
from the bench YAML. Frames where either view has no wire or the views do
not match are skipped and counted.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import yaml

from guidewire.bag import read_bag, suite_typestore
from guidewire.geometry import look_at_rotation
from guidewire.imaging import from_image_fields
from guidewire.reconstruction.case import write_case
from guidewire.reconstruction.magnets import WireMagnets
from guidewire.reconstruction.inputs import array_from_message, camera_from_info
from guidewire.reconstruction.physics import ReconstructionError, WirePrior
from guidewire.reconstruction.stereo import triangulate_wire
from guidewire.reconstruction.views import camera_centreline, polyline_length
from guidewire.sync import StampBuffer, stamp_ns


def make_labels(bag: Path, out: Path, bench_config=None, top: str = "camera_top", side: str = "camera_side",
                array_topic: str = "/mag_array/frame", joints_topic: str = "/robot/joint_states",
                background: np.ndarray | None = None, slop_s: float = 0.02) -> dict:
    """Write one case folder per matched stereo pair; returns counts of written and skipped frames."""
    from guidewire.twin.config import load_bench_config

    config = load_bench_config(bench_config)
    mountings = {camera.name: camera for camera in config.stereo}
    g = config.guidewire
    magnets = WireMagnets.of_guidewire(g)
    entry = np.asarray(g.entry_point, float)
    direction = np.asarray(g.entry_direction, float) / np.linalg.norm(g.entry_direction)
    offset = np.array([0.0, 0.0, config.magnetometer_array.height])
    typestore = suite_typestore()
    images = {top: {}, side: {}}
    infos = {}
    arrays, robot = StampBuffer(history_s=1e9), StampBuffer(history_s=1e9)
    topics = {f"/{top}/image_raw": top, f"/{side}/image_raw": side}
    for topic, msgtype, _, data in read_bag(bag):
        if topic in topics or topic in (f"/{top}/camera_info", f"/{side}/camera_info", array_topic, joints_topic):
            message = typestore.deserialize_cdr(data, msgtype)
            if topic in topics:
                images[topics[topic]][stamp_ns(message.header.stamp)] = message
            elif topic.endswith("camera_info"):
                infos[topic.split("/")[1]] = message
            elif topic == array_topic:
                arrays.add(stamp_ns(message.header.stamp), message)
            elif "insertion" in list(message.name):
                insertion = float(message.position[list(message.name).index("insertion")])
                robot.add(stamp_ns(message.header.stamp), insertion)
    missing = [name for name in (top, side) if name not in infos]
    if missing:
        raise ReconstructionError(f"the bag has no CameraInfo for {', '.join(missing)}")
    cameras = {name: camera_from_info(infos[name], look_at_rotation(mountings[name].position, mountings[name].look_at,
                                                                     mountings[name].up), mountings[name].position)
               for name in (top, side)}
    slop = int(slop_s * 1e9)
    counts = {"written": 0, "no stereo partner": 0, "no wire": 0, "no match": 0}
    side_stamps = np.array(sorted(images[side]), np.int64)
    for index, stamp in enumerate(sorted(images[top])):
        partner = side_stamps[np.argmin(np.abs(side_stamps - stamp))] if side_stamps.size else None
        if partner is None or abs(int(partner) - stamp) > slop:
            counts["no stereo partner"] += 1
            continue
        pictures = {name: _pixels(images[name][key]) for name, key in ((top, stamp), (side, int(partner)))}
        lines = {name: camera_centreline(picture) for name, picture in pictures.items()}
        if any(line is None for line in lines.values()):
            counts["no wire"] += 1
            continue
        try:
            label = triangulate_wire(cameras[top], lines[top], cameras[side], lines[side], entry)
        except ReconstructionError:
            counts["no match"] += 1
            continue
        hit = robot.nearest(stamp, slop)
        length = hit[1] if hit is not None else polyline_length(label)
        prior = WirePrior(inserted_length=length, entry_point=entry, entry_direction=direction, magnets=magnets)
        frame = arrays.nearest(stamp, slop)
        array, _ = array_from_message(None if frame is None else frame[1], offset, background,
                                      config.magnetometer_array.noise_rms)
        folder = out / f"{index:05d}"
        write_case(folder, cameras[top], pictures[top], prior, array, method="physics" if array else "image_only")
        (folder / "label.yaml").write_text(yaml.safe_dump(
            {"frame": "bench", "units": "m", "source": "stereo triangulation", "stamp_ns": int(stamp),
             "centreline": np.round(label, 7).tolist()}, sort_keys=False))
        counts["written"] += 1
    return counts


def _pixels(message) -> np.ndarray:
    image = from_image_fields(message.height, message.width, message.encoding, message.is_bigendian,
                              message.step, bytes(message.data))
    return image if image.ndim == 2 else image.mean(axis=2).astype(image.dtype)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bag")
    parser.add_argument("out")
    parser.add_argument("--bench-config", help="bench YAML (camera mountings, wire); default: embedded")
    parser.add_argument("--background", help="background field YAML (the driver's format) to store in each case")
    parser.add_argument("--slop", type=float, default=0.02, help="largest stamp difference, s")
    args = parser.parse_args(argv)
    background = None
    if args.background:
        background = np.asarray(yaml.safe_load(Path(args.background).read_text())["calibration"]["background"],
                                float)
    try:
        counts = make_labels(Path(args.bag), Path(args.out), args.bench_config, background=background,
                             slop_s=args.slop)
    except (ReconstructionError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(", ".join(f"{key}: {value}" for key, value in counts.items()))
    return 0 if counts["written"] else 1


if __name__ == "__main__":
    sys.exit(main())
