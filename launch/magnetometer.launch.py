"""The magnetometer-array driver alone, configured from config/pipeline.yaml.

    ros2 launch guidewire_perception magnetometer.launch.py backend:=i2c rate_hz:=400 namespace:=bench1

Same nodes and parameters as `python -m guidewire_ros.run_pipeline --only magnetometer_driver`.
"""
from guidewire_ros.pipeline_config import launch_description

# launch argument -> node.parameter of config/pipeline.yaml
SHORT_ARGUMENTS = {
    "backend": "magnetometer_driver.backend",
    "rate_hz": "magnetometer_driver.rate_hz",
    "calibration_file": "magnetometer_driver.calibration_file",
}


def generate_launch_description():
    return launch_description(only=["magnetometer_driver"],
                              short_arguments=SHORT_ARGUMENTS)
