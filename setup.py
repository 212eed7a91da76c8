"""pip install of the algorithm library for users without ROS 2.

    pip install .            # the guidewire library (bench, algorithms)

The ROS package itself (messages, nodes, launch files) is built with colcon
from CMakeLists.txt / package.xml. Exact versions live in requirements.lock.
"""
from setuptools import find_packages, setup

setup(
    name="guidewire-perception",
    version="0.1.0",
    description="Guidewire perception for interventional robots: simulated bench and algorithms",
    package_dir={"": "src"},
    packages=find_packages("src", include=["guidewire", "guidewire.*"]),
    package_data={"guidewire.segmentation": ["weights/*.pt", "weights/*.md"],
                  "guidewire.registration": ["weights/*.pt", "weights/*.md"],
                  "guidewire.reconstruction": ["weights/*.pt", "weights/*.md"]},
    python_requires=">=3.10",
    install_requires=["numpy", "scipy", "pyyaml", "opencv-python-headless", "magpylib", "torch", "nibabel",
                      "scikit-image", "tqdm"],
    extras_require={"fluoroscopy": ["diffdrr", "torchio", "fastcore", "einops", "kornia", "roma", "pandas"],
                    "onnx": ["onnx", "onnxruntime"], "hardware": ["smbus2", "pyserial"],
                    "viewers": ["pyigtl", "foxglove-sdk"]},
    license="Apache-2.0",
)
