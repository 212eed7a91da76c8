"""Print the pinned lock of the running environment, for requirements.lock.

Like `pip freeze --all`, but without the ROS wheels' embedded egg-info
packages (action_msgs, rclpy, ...), which are not distributions of their own
and cannot be installed by name, and without pip itself (bootstrap pins it).
"""
from importlib.metadata import distributions

HEADER = """\
# Every dependency, pinned: the complete environment, written by 'make lock'.
# Installed with --no-deps: the list is closed, so diffdrr's declared torchvision/timm
# dependencies never come in (no CPU builds of them exist; see README)."""

pins = sorted(
    (dist.metadata["Name"], dist.version)
    for dist in distributions()
    if not str(getattr(dist, "_path", "")).endswith(".egg-info") and dist.metadata["Name"] != "pip"
)
print(HEADER)
for name, version in pins:
    print(f"{name}=={version}")
