"""Guidewire perception algorithms: a plain Python library (no rclpy).

Subpackages:
  guidewire.bench   -- the simulated bench (digital twin) that generates ground truth
  guidewire.config  -- strict YAML configuration
  guidewire.geometry -- rigid transforms and camera models
"""

__version__ = "0.1.0"
