"""The tracker on a ground robot: 30 Hz RGB + 9 Hz thermal camera, config/ground_robot.yaml,
topics front/{rgb,thermal}/image_raw (relative: namespace:= applies).

    ros2 launch rgbt_tracking_ros ground_robot.launch.py rgb_topic:=/camera/color/image_raw rviz:=true

Includes rgbt_tracker.launch.py with platform:=ground_robot; every other argument of that file
applies here too (docs/launch.md).
"""
from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource

from rgbt_tracking_ros import launch_support

PLATFORM = "ground_robot"
ARGUMENTS = launch_support.launch_arguments(PLATFORM)


def generate_launch_description():
    core = Path(__file__).with_name(launch_support.CORE_LAUNCH_FILE)
    declarations = [DeclareLaunchArgument(**argument.declare_kwargs()) for argument in ARGUMENTS]
    include = IncludeLaunchDescription(PythonLaunchDescriptionSource(str(core)),
                                       launch_arguments=[("platform", PLATFORM)])
    return LaunchDescription([*declarations, include])
