"""The RGB-T tracker node, and RViz on request, for any platform.

    ros2 launch rgbt_tracking_ros rgbt_tracker.launch.py platform:=drone rviz:=true
    ros2 launch rgbt_tracking_ros rgbt_tracker.launch.py params_file:=/path/robot.yaml namespace:=robot1

drone.launch.py, ground_robot.launch.py and replay.launch.py include this file. Every
decision (parameter files, overrides, names, the RViz command) is made by
rgbt_tracking_ros.launch_support (the node's command line by node_command, as for
`rgbt-track node`), which is unit-tested without `launch`; this file only reads the arguments. `ros2 launch rgbt_tracking_ros rgbt_tracker.launch.py --show-args` lists them;
docs/launch.md explains them.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from rgbt_tracking_ros import launch_support

ARGUMENTS = launch_support.launch_arguments("rgbt_tracker")
ACTIONS = {"node": Node, "process": ExecuteProcess}


def _start(context):
    values = {argument.name: LaunchConfiguration(argument.name).perform(context)
              for argument in ARGUMENTS}
    return [ACTIONS[action.kind](**action.kwargs)
            for action in launch_support.plan_tracker_launch(values)]


def generate_launch_description():
    declarations = [DeclareLaunchArgument(**argument.declare_kwargs()) for argument in ARGUMENTS]
    return LaunchDescription([*declarations, OpaqueFunction(function=_start)])
