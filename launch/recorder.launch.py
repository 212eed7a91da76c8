"""The rosbag2 recorder, configured from config/pipeline.yaml.

    ros2 launch guidewire_perception recorder.launch.py output:=mybag storage:=sqlite3

Same node and parameters as `python -m guidewire_ros.run_pipeline --only recorder`.
"""
from guidewire_ros.pipeline_config import launch_description

# launch argument -> node.parameter of config/pipeline.yaml
SHORT_ARGUMENTS = {
    "output": "recorder.output",
    "storage": "recorder.storage",
    "topics": "recorder.topics",
}


def generate_launch_description():
    return launch_description(only=["recorder"],
                              short_arguments=SHORT_ARGUMENTS)
