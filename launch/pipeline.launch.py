"""Launch the pipeline on the simulated bench (or real hardware via arguments).

    ros2 launch guidewire_perception pipeline.launch.py magnetometer_driver.backend:=i2c
    ros2 launch guidewire_perception pipeline.launch.py rviz:=true     # and RViz on rviz/pipeline.rviz

Every parameter of config/pipeline.yaml can be overridden as <node>.<parameter>:=value.
The same file drives `make run` (guidewire_ros.run_pipeline) where launch_ros is missing.
"""
from guidewire_ros.pipeline_config import launch_description


def generate_launch_description():
    return launch_description(rviz_config="pipeline.rviz")
