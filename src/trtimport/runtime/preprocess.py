"""Turn input files (``.npy``, ``.npz``, images) into arrays a model takes.

The image options cover the classic demos: Caffe's MNIST ``x/256`` is ``--scale 0.00390625``;
the ``(x/255 - 0.5)/0.5`` normalisation is ``--scale 0.00392156862745098 --mean 0.5 --std 0.5``
(mean and std apply after scaling).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trtimport.core.options import ImageOptions
from trtimport.errors import MissingDependencyError, ModelParseError, ShapeError, UsageError

#: The longest side an image may be resized to (OpenCV's image sides are 16-bit in places).
MAX_SIDE = 65535

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp")


def parse_floats(text: str, what: str) -> tuple[float, ...]:
    """``0.5`` or ``104,117,123`` -> floats."""
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError as err:
        raise UsageError(f"invalid {what} '{text}': expected numbers separated by commas") from err


def parse_resize(text: str) -> tuple[int, int]:
    """``224x224`` or ``224`` -> (height, width)."""
    parts = text.lower().split("x")
    try:
        dims = [int(p) for p in parts]
    except ValueError as err:
        raise UsageError(f"invalid --resize '{text}': expected HxW, e.g. 224x224") from err
    if len(dims) == 1:
        dims = dims * 2
    if len(dims) != 2 or min(dims) <= 0:
        raise UsageError(f"invalid --resize '{text}': expected HxW, e.g. 224x224")
    if max(dims) > MAX_SIDE:
        raise UsageError(f"invalid --resize '{text}': each side is at most {MAX_SIDE} pixels")
    return dims[0], dims[1]


#: Bytes of float32 per pixel of a three-channel image (the largest a decoded image takes).
_PIXEL_BYTES = 3 * 4


def _max_pixels() -> int:
    from trtimport.core.input_files import max_array_bytes

    return max(1, max_array_bytes() // _PIXEL_BYTES)


def _cv2():  # type: ignore[no-untyped-def]
    import os

    # OpenCV refuses to decode images above this many pixels (a decompression bomb).
    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(_max_pixels()))
    try:
        import cv2
    except ImportError as err:
        raise MissingDependencyError("Reading images", "verify", module="cv2") from err
    return cv2


def load_image(
    path: Path, options: ImageOptions, shape: tuple[int | None, ...] | None = None
) -> np.ndarray:
    """Read an image as a float32 batch of one, laid out for a model input of ``shape``."""
    from trtimport.core.input_files import check_input

    check_input(path, "image")
    cv2 = _cv2()
    order = options.channel_order
    channels = None
    if shape is not None and len(shape) == 4:
        channels = shape[1] if options.layout == "nchw" else shape[3]
    if order is None:
        order = "gray" if channels == 1 else "bgr"
    flag = cv2.IMREAD_GRAYSCALE if order == "gray" else cv2.IMREAD_COLOR
    try:
        image = cv2.imread(str(path), flag)
    except cv2.error as err:  # a declared size above OPENCV_IO_MAX_IMAGE_PIXELS
        raise ModelParseError(
            f"{path}: OpenCV refuses this image ({str(err).strip().splitlines()[-1]}); it is "
            "too large or corrupt"
        ) from err
    if image is None:
        raise ModelParseError(f"{path}: not a readable image")
    size = options.resize
    if size is None and shape is not None and len(shape) == 4:
        h, w = (shape[2], shape[3]) if options.layout == "nchw" else (shape[1], shape[2])
        if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
            size = (h, w)
    if size is not None and size[0] * size[1] > _max_pixels():
        raise UsageError(
            f"{path}: resizing to {size[0]}x{size[1]} would take more memory than this machine "
            "has; give a smaller --resize or an input shape"
        )
    if size is not None and image.shape[:2] != size:
        image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    if order == "rgb":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif order not in ("bgr", "gray"):
        raise UsageError(f"invalid --channel-order '{order}': use rgb, bgr or gray")
    data = image.astype(np.float32)
    if data.ndim == 2:
        data = data[:, :, None]
    data = data * np.float32(options.scale)
    data = (data - np.asarray(options.mean, np.float32)) / np.asarray(options.std, np.float32)
    if options.layout == "nchw":
        data = data.transpose(2, 0, 1)
    elif options.layout != "nhwc":
        raise UsageError(f"invalid --layout '{options.layout}': use nchw or nhwc")
    return np.ascontiguousarray(data[None], dtype=np.float32)


def load_array_file(path: Path, name: str | None = None) -> np.ndarray:
    """Load a ``.npy`` or one array of an ``.npz`` (never with pickles), each checked from
    its header before its data is read (:mod:`trtimport.core.input_files`)."""
    from trtimport.core.input_files import load_npy, load_npz, npz_names

    if path.suffix.lower() != ".npz":
        return load_npy(path)
    keys = npz_names(path)
    if name is not None and name in keys:
        return load_npz(path, [name])[name]
    if len(keys) == 1:
        return load_npz(path, keys)[keys[0]]
    raise UsageError(f"{path}: holds arrays {', '.join(keys)}; none is named '{name}'")


def load_input(
    path: Path,
    name: str,
    options: ImageOptions,
    shape: tuple[int | None, ...] | None = None,
) -> np.ndarray:
    """Load one input tensor from a numpy file or an image."""
    from trtimport.core.input_files import check_input

    check_input(path, f"input file for '{name}'")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return load_image(path, options, shape)
    if path.suffix.lower() in (".npy", ".npz"):
        array = load_array_file(path, name)
        if shape is not None and len(shape) != array.ndim:
            raise ShapeError(
                f"{path}: array of shape {list(array.shape)} for input '{name}', which has "
                f"rank {len(shape)} {list(shape)}"
            )
        return array
    raise UsageError(
        f"{path}: unknown input file type; use .npy, .npz or an image ({', '.join(IMAGE_SUFFIXES)})"
    )
