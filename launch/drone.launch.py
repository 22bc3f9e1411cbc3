r"""The tracker on a drone: gimbal RGB + thermal cameras at 30 Hz, config/drone.yaml,
topics gimbal/{rgb,thermal}/image_raw (relative: namespace:= applies).

    ros2 launch rgbt_tracking_ros drone.launch.py namespace:=drone1 \
        model:=ainet_256 checkpoint:=/data/AINet_ep0015.pth.tar

Includes rgbt_tracker.launch.py with platform:=drone; every other argument of that file
applies here too (docs/launch.md).
"""
from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource

from rgbt_tracking_ros import launch_support

PLATFORM = "drone"
ARGUMENTS = launch_support.launch_arguments(PLATFORM)


def generate_launch_description():
    core = Path(__file__).with_name(launch_support.CORE_LAUNCH_FILE)
    declarations = [DeclareLaunchArgument(**argument.declare_kwargs()) for argument in ARGUMENTS]
    include = IncludeLaunchDescription(PythonLaunchDescriptionSource(str(core)),
                                       launch_arguments=[("platform", PLATFORM)])
    return LaunchDescription([*declarations, include])
