r"""Replay a bag into the tracker, with RViz showing the annotated image.

    ros2 launch rgbt_tracking_ros replay.launch.py bag:=/data/flight_03 platform:=drone
    ros2 launch rgbt_tracking_ros replay.launch.py bag:=/data/run.mcap platform:=ground_robot \
        rate:=0.5 loop:=true initial_box:="[610, 320, 40, 90]"

Plays the bag with `ros2 bag play <bag> --clock` (after `delay` seconds, so the model is
loaded) and includes rgbt_tracker.launch.py with use_sim_time and rviz on by default. The
command line is built by rgbt_tracking_ros.launch_support (docs/launch.md).
"""
from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

from rgbt_tracking_ros import launch_support

ARGUMENTS = launch_support.launch_arguments("replay")


def _play(context):
    values = {argument.name: LaunchConfiguration(argument.name).perform(context)
              for argument in ARGUMENTS}
    return [ExecuteProcess(**action.kwargs)
            for action in launch_support.plan_bag_replay(values)]


def generate_launch_description():
    core = Path(__file__).with_name(launch_support.CORE_LAUNCH_FILE)
    declarations = [DeclareLaunchArgument(**argument.declare_kwargs()) for argument in ARGUMENTS]
    include = IncludeLaunchDescription(PythonLaunchDescriptionSource(str(core)))
    return LaunchDescription([*declarations, include, OpaqueFunction(function=_play)])
