"""The stereo pair and the X-ray capture, configured from config/pipeline.yaml.

    ros2 launch guidewire_perception cameras.launch.py stereo_source:=video stereo_location:=run.mp4 stereo_rate_hz:=15

Same nodes and parameters as `python -m guidewire_ros.run_pipeline --only stereo_capture fluoro_capture`.
"""
from guidewire_ros.pipeline_config import launch_description

# launch argument -> node.parameter of config/pipeline.yaml
SHORT_ARGUMENTS = {
    "stereo_source": "stereo_capture.source",
    "stereo_location": "stereo_capture.location",
    "stereo_rate_hz": "stereo_capture.rate_hz",
    "xray_source": "fluoro_capture.source",
    "xray_location": "fluoro_capture.location",
    "xray_rate_hz": "fluoro_capture.rate_hz",
}


def generate_launch_description():
    return launch_description(only=["stereo_capture", "fluoro_capture"],
                              short_arguments=SHORT_ARGUMENTS)
