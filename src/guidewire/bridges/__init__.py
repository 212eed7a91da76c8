"""Viewers beyond RViz: 3D Slicer over OpenIGTLink (`slicer`, pyigtl) and a Foxglove live view
(`foxglove_view`, foxglove-sdk). Each module imports only its own viewer library."""
