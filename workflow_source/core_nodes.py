"""Interfaces of the ComfyUI core nodes the shipped workflows use, transcribed from ComfyUI's source.

The workflow builder needs each node's inputs (in order, to write ``widgets_values``) and
output types; nothing here runs. Sources: ``comfy_extras/nodes_video.py``
(comfyanonymous/ComfyUI @0413db9: LoadVideo, GetVideoComponents, CreateVideo, SaveVideo,
V3 schemas written as the V1 dicts ComfyUI serves at ``/object_info``) and ``nodes.py``
(ImageScale). The test executor (``tests/comfy_core_nodes.py``) gives these interfaces
simple implementations.
"""

from __future__ import annotations

MAX_RESOLUTION = 16384
UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
CROP_METHODS = ["disabled", "center"]
VIDEO_CONTAINERS = ["auto", "mp4"]
VIDEO_CODECS = ["auto", "h264"]


class LoadVideo:
    """Loads a video from ComfyUI's input folder (with an upload button)."""

    RETURN_TYPES = ("VIDEO",)
    RETURN_NAMES = ("VIDEO",)
    CATEGORY = "image/video"

    @classmethod
    def video_files(cls) -> list[str]:
        """The videos in ComfyUI's input folder (none when the interface is only read)."""
        return []

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        """One file combo with a video upload widget."""
        return {"required": {"file": (sorted(cls.video_files()), {"video_upload": True})}}


class GetVideoComponents:
    """Splits a VIDEO into its frames, audio and frame rate."""

    RETURN_TYPES = ("IMAGE", "AUDIO", "FLOAT")
    RETURN_NAMES = ("images", "audio", "fps")
    CATEGORY = "image/video"

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        """The video."""
        return {"required": {"video": ("VIDEO", {"tooltip": "The video to extract components from."})}}


class CreateVideo:
    """Makes a VIDEO from frames, a frame rate and optional audio."""

    RETURN_TYPES = ("VIDEO",)
    RETURN_NAMES = ("VIDEO",)
    CATEGORY = "image/video"

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        """Frames, fps (1-120) and optional audio."""
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The images to create a video from."}),
                "fps": ("FLOAT", {"default": 30.0, "min": 1.0, "max": 120.0, "step": 1.0}),
            },
            "optional": {"audio": ("AUDIO", {"tooltip": "The audio to add to the video."})},
        }


class SaveVideo:
    """Saves a VIDEO to ComfyUI's output folder (an output node)."""

    RETURN_TYPES = ()
    RETURN_NAMES = ()
    OUTPUT_NODE = True
    CATEGORY = "image/video"

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        """The video, a filename prefix, the container and the codec."""
        return {
            "required": {
                "video": ("VIDEO", {"tooltip": "The video to save."}),
                "filename_prefix": ("STRING", {"default": "video/ComfyUI"}),
                "format": (VIDEO_CONTAINERS, {"default": "auto"}),
                "codec": (VIDEO_CODECS, {"default": "auto"}),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }


class ImageScale:
    """Resizes an image batch to a width and height, optionally cropping to keep the aspect ratio."""

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("IMAGE",)
    CATEGORY = "image/upscaling"

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        """Image, method, size and crop."""
        return {
            "required": {
                "image": ("IMAGE",),
                "upscale_method": (UPSCALE_METHODS,),
                "width": ("INT", {"default": 512, "min": 0, "max": MAX_RESOLUTION, "step": 1}),
                "height": ("INT", {"default": 512, "min": 0, "max": MAX_RESOLUTION, "step": 1}),
                "crop": (CROP_METHODS,),
            }
        }


CORE_NODES = {cls.__name__: cls for cls in (LoadVideo, GetVideoComponents, CreateVideo, SaveVideo, ImageScale)}
CORE_DISPLAY_NAMES = {
    "LoadVideo": "Load Video",
    "GetVideoComponents": "Get Video Components",
    "CreateVideo": "Create Video",
    "SaveVideo": "Save Video",
    "ImageScale": "Upscale Image",
}
