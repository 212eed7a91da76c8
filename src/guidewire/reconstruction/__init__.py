"""3D guidewire reconstruction: physics fusion of one camera view, the magnetometer array and the robot's
prior (and, in a vessel, the path its tip took); stereo triangulation; the tip magnet's pose from the array
alone; errors against ground truth."""
from guidewire.reconstruction.leader import LeaderPath, LeaderSettings, PathTrack
from guidewire.reconstruction.magnets import WireMagnets, dipole_field, wire_field
from guidewire.reconstruction.metrics import ShapeErrors, shape_errors
from guidewire.reconstruction.physics import (ArrayField, FitSettings, ReconstructionError, WireEstimate,
                                              WirePrior, reconstruct, reconstruct_with_leader)
from guidewire.reconstruction.stereo import triangulate_wire
from guidewire.reconstruction.tip_fit import TipPose, fit_tip_magnet

__all__ = ["ArrayField", "FitSettings", "LeaderPath", "LeaderSettings", "PathTrack", "ReconstructionError",
           "ShapeErrors", "TipPose", "WireEstimate", "WireMagnets", "WirePrior", "dipole_field", "fit_tip_magnet",
           "reconstruct", "reconstruct_with_leader", "shape_errors", "triangulate_wire", "wire_field"]
