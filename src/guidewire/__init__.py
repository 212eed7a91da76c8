"""Guidewire perception algorithms: a plain Python library (no rclpy).

Subpackages:
  guidewire.twin     -- the digital twin of the bench, which generates ground truth
                        (guidewire.twin.config: its strict YAML configuration)
  guidewire.geometry -- rigid transforms and camera models
"""

__version__ = "0.1.0"
