"""Launch the pipeline on the simulated bench (or real hardware via arguments).

    ros2 launch guidewire_perception pipeline.launch.py magnetometer_driver.backend:=i2c

Every parameter of config/pipeline.yaml can be overridden as <node>.<parameter>:=value.
The same file drives `make run` (guidewire_ros.run_pipeline) where launch_ros is missing.
"""
from launch import LaunchDescription
from launch.actions import OpaqueFunction
from launch_ros.actions import Node

from guidewire_ros.composition import load_pipeline


def nodes_from_config(context):
    overrides = {key: value for key, value in context.launch_configurations.items() if "." in key}
    return [Node(package="guidewire_perception", executable=spec.executable, name=spec.name,
                 namespace=spec.namespace, parameters=[spec.parameters], output="screen")
            for spec in load_pipeline(overrides=overrides)]


def generate_launch_description():
    return LaunchDescription([OpaqueFunction(function=nodes_from_config)])
