"""3D guidewire reconstruction: physics fusion of one camera view, the magnetometer array and the robot's
prior; stereo triangulation; the tip magnet's pose from the array alone; errors against ground truth."""
from guidewire.reconstruction.magnets import WireMagnets, dipole_field, wire_field
from guidewire.reconstruction.metrics import ShapeErrors, shape_errors
from guidewire.reconstruction.physics import (ArrayField, FitSettings, ReconstructionError, WireEstimate,
                                              WirePrior, reconstruct)
from guidewire.reconstruction.stereo import triangulate_wire
from guidewire.reconstruction.tip_fit import TipPose, fit_tip_magnet

__all__ = ["ArrayField", "FitSettings", "ReconstructionError", "ShapeErrors", "TipPose", "WireEstimate",
           "WireMagnets", "WirePrior", "dipole_field", "fit_tip_magnet", "reconstruct", "shape_errors",
           "triangulate_wire", "wire_field"]
