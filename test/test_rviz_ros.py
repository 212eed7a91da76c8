"""Every topic the RViz config shows is published by the suite's nodes, with the type its display expects."""
import pytest
import yaml

rclpy = pytest.importorskip("rclpy")

from conftest import ROOT  # noqa: E402
from ros_support import node_args, ros, running, spin_until, tiny_weights  # noqa: E402,F401 (fixtures)

DISPLAY_TYPES = {"rviz_default_plugins/Image": "sensor_msgs/msg/Image",
                 "rviz_default_plugins/MarkerArray": "visualization_msgs/msg/MarkerArray"}
SMALL_BENCH = {"bench": {
    "stereo": [{"name": "camera_top", "width": 64, "height": 48, "fx": 80.0, "fy": 80.0, "cx": 31.5, "cy": 23.5},
               {"name": "camera_side", "width": 64, "height": 48, "fx": 80.0, "fy": 80.0, "cx": 31.5, "cy": 23.5,
                "position": [0.0, -0.40, 0.03], "up": [0.0, 0.0, 1.0]}],
    "fluoroscopy": {"detector_pixels": 64, "pixel_spacing": 0.0032}}}


def rviz_topics():
    config = yaml.safe_load((ROOT / "rviz" / "sensors.rviz").read_text())
    return {d["Topic"]["Value"]: DISPLAY_TYPES[d["Class"]]
            for d in config["Visualization Manager"]["Displays"] if "Topic" in d}


def test_rviz_topics_are_published_with_the_display_types(ros, tmp_path, tiny_weights):
    domain, node, executor, _ = ros
    expected = rviz_topics()
    assert len(expected) == 5
    bench = tmp_path / "bench.yaml"
    bench.write_text(yaml.safe_dump(SMALL_BENCH | {"bench": SMALL_BENCH["bench"] | {
        "fluoroscopy": SMALL_BENCH["bench"]["fluoroscopy"] | {"cache_dir": str(tmp_path / "drr")}}}))
    nodes = [
        node_args("magnetometer_driver", "magnetometer_driver", {"bench_config": str(bench)}, tmp_path),
        node_args("camera_capture", "stereo_capture", {"source": "sim_stereo", "bench_config": str(bench)}, tmp_path),
        node_args("camera_capture", "fluoro_capture", {"source": "sim_xray", "camera_name": "xray",
                                                       "bench_config": str(bench)}, tmp_path),
        node_args("segmentation_node", "segmentation", {"weights": str(tiny_weights)}, tmp_path)]
    with running(nodes[0], domain, tmp_path / "0.log"), running(nodes[1], domain, tmp_path / "1.log"), \
            running(nodes[2], domain, tmp_path / "2.log"), running(nodes[3], domain, tmp_path / "3.log"):
        def published():
            return {topic: types for topic, types in node.get_topic_names_and_types()
                    if node.get_publishers_info_by_topic(topic)}
        assert spin_until(executor, lambda: set(expected) <= set(published()), 60), \
            sorted(set(expected) - set(published()))
        topics = published()
    for topic, message_type in expected.items():
        assert topics[topic] == [message_type], topic
