"""The camera stamp offset of a bag, from its images (`rgbt-track bag offset`)."""
from __future__ import annotations

import os

from ..codec import decode_image
from ..timing.offset import OffsetConfig, OffsetEstimate, OffsetEstimator
from .messages import header_stamp
from .read import connections, image_topic, messages, open_bag

_NS_PER_S = 1_000_000_000


def estimate_bag_offset(path: str | os.PathLike[str], rgb_topic: str = "/rgb/image",
                        thermal_topic: str = "/thermal/image", config: OffsetConfig | None = None,
                        start: float = 0.0) -> tuple[OffsetEstimate | None, int, int]:
    """(estimate or None, RGB frames read, thermal frames read) over `config.window` seconds of
    both cameras, starting `start` seconds after the bag's first image stamp.

    Topics are base topics, as for `bag evaluate`: an Image or CompressedImage there, else
    image_transport's `<topic>/compressed`. Stamps are the header stamps as sent.
    """
    config = config if config is not None else OffsetConfig()
    estimator = OffsetEstimator(config)
    counts = {"rgb": 0, "thermal": 0}
    first = None
    with open_bag(path) as reader:
        rgb_topic, thermal_topic = image_topic(reader, rgb_topic), image_topic(reader, thermal_topic)
        conns = connections(reader, rgb_topic) + connections(reader, thermal_topic)
        for topic, _, msg in messages(reader, conns):
            stamp = header_stamp(msg)
            first = stamp if first is None else first
            elapsed = (stamp - first) / _NS_PER_S
            if elapsed < start:
                continue
            if elapsed > start + config.window + 2 * config.max_offset:
                break
            camera = "rgb" if topic == rgb_topic else "thermal"
            image = decode_image(msg, camera)
            (estimator.add_rgb if camera == "rgb" else estimator.add_thermal)(stamp, image)
            counts[camera] += 1
    return estimator.estimate(), counts["rgb"], counts["thermal"]
