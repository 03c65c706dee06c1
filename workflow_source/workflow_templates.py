"""The shipped templates: each workflow's graph, its thumbnail's diagram, and the Note it opens with (made from the graph).

Widget values not given here are the nodes' defaults, which are the paper's settings.
"""

from __future__ import annotations

from workflow_graph import DiagramStep, Graph, Node, Output

MODELS_FOLDER = "ComfyUI/models/show1/"
DOWNLOAD = (
    f"Each loader downloads its model into {MODELS_FOLDER}<folder> on first use (only the files the stage needs); "
    "offline, copy the folders there yourself (README: Where the weights go)."
)
T5 = (
    "- show-1-base: its T5-XXL text encoder (19 GB fp32) - or pick t5xxl_fp16 / t5xxl_fp8_e4m3fn.safetensors from "
    "ComfyUI/models/text_encoders in the T5 loader (only the tokenizer, ~1 MB, is then fetched)"
)
UPLOAD_FIRST = "Upload a video first: click 'choose video to upload' on Load Video (or drop a video file on it)."
MODEL_LINES = {
    "Show1KeyframeModelLoader": "- show-1-base: keyframes (stage 1)",
    "Show1T5Loader": T5,
    "Show1InterpolationModelLoader": "- show-1-interpolation: stage 2",
    "Show1PixelSRModelLoader": "- show-1-sr1: pixel super-resolution (stage 3)",
    "Show1FirstFrameModelLoader": (
        "- IF-II-L-v1.0: stage 3's first frame. Gated: accept its licence on huggingface.co/DeepFloyd/IF-II-L-v1.0 "
        "and run 'hf auth login', or delete that loader (the first frame is then upscaled bilinearly)"
    ),
    "Show1LatentSRModelLoader": "- show-1-sr2: expert latent super-resolution (stage 4), with its VAE and CLIP text encoder",
}
"""What the Note says of each loader a template holds, in this order (CLIP comes with show-1-sr2)."""


def template_note(graph: Graph) -> str:
    """The Note a template opens with, from its graph: the upload step where it loads a video, what it
    does (its description), the models its loaders need and where they go."""
    classes = {node.class_type for node in graph.nodes}
    upload = [UPLOAD_FIRST, ""] if "LoadVideo" in classes else []
    models = [line for loader, line in MODEL_LINES.items() if loader in classes]
    return "\n".join([*upload, graph.description, "", "Models:", *models, "", DOWNLOAD])


def _encoders(g: Graph, prompt: str, clip: bool = True, title: str | None = None, t5: bool = True) -> Node:
    """Show-1 Text Encode with only the encoders the graph uses connected (an unconnected one never loads)."""
    inputs: dict = {"prompt": prompt}
    if t5:
        inputs["t5"] = g.add("Show1T5Loader")[0]
    if clip:
        inputs["clip"] = g.add("Show1CLIPLoader")[0]
    return g.add("Show1TextEncode", title, **inputs)


def _save(g: Graph, images: Output, fps: Output, prefix: str, audio: Output | None = None) -> None:
    video = g.add("CreateVideo", images=images, fps=fps, **({"audio": audio} if audio is not None else {}))
    g.add("SaveVideo", video=video[0], filename_prefix=prefix)


def text_to_video() -> Graph:
    """The full cascade with the paper's settings, IF-II-L first frame included."""
    g = Graph(
        "show1_text_to_video",
        "Text to video",
        "Show-1 text-to-video with the paper's settings: keyframes, interpolation, pixel SR (IF-II-L first frame) and "
        "expert latent SR to 29 frames at 576x320, 8 fps.",
        (
            DiagramStep("prompt", "T5-XXL + CLIP"),
            DiagramStep("1 keyframes", "8 frames", (64, 40)),
            DiagramStep("2 interpolation", "29 frames", (64, 40)),
            DiagramStep("3 pixel SR", "x4", (256, 160)),
            DiagramStep("4 latent SR", "29 frames, 8 fps", (576, 320)),
        ),
    )
    text = _encoders(g, "a panda playing guitar on the beach")
    keyframes = g.add("Show1Keyframes", "Stage 1: keyframes", model=g.add("Show1KeyframeModelLoader")[0], t5_embeds=text[0])
    interpolated = g.add(
        "Show1Interpolation",
        "Stage 2: interpolation",
        model=g.add("Show1InterpolationModelLoader")[0],
        t5_embeds=text[0],
        images=keyframes[0],
        fps=keyframes[1],
    )
    pixel_sr = g.add(
        "Show1PixelSR",
        "Stage 3: pixel super-resolution",
        model=g.add("Show1PixelSRModelLoader")[0],
        t5_embeds=text[0],
        images=interpolated[0],
        fps=interpolated[1],
        first_frame_model=g.add("Show1FirstFrameModelLoader")[0],
    )
    latent_sr = g.add(
        "Show1LatentSR",
        "Stage 4: expert latent super-resolution",
        model=g.add("Show1LatentSRModelLoader")[0],
        clip_embeds=text[1],
        images=pixel_sr[0],
        fps=pixel_sr[1],
    )
    _save(g, latent_sr[0], latent_sr[1], "video/show1_text_to_video")
    return g


def keyframes_preview() -> Graph:
    """Stage 1 only: a fast look at motion and text alignment."""
    g = Graph(
        "show1_keyframes_preview",
        "Keyframes preview",
        "Show-1 stage 1 only: 8 keyframes at 64x40 and 2 fps, a fast preview of motion and text alignment before "
        "running the whole cascade (the same prompt and seed give the same keyframes there).",
        (DiagramStep("prompt", "T5-XXL"), DiagramStep("1 keyframes", "8 frames, 2 fps", (64, 40))),
    )
    text = _encoders(g, "a panda playing guitar on the beach", clip=False)
    keyframes = g.add("Show1Keyframes", "Stage 1: keyframes", model=g.add("Show1KeyframeModelLoader")[0], t5_embeds=text[0])
    _save(g, keyframes[0], keyframes[1], "video/show1_keyframes")
    return g


def upscale_any_video() -> Graph:
    """A loaded video through pixel SR and expert latent SR, VIDEO in and VIDEO out."""
    g = Graph(
        "show1_upscale_any_video",
        "Upscale any video",
        "Upscale any video with Show-1's stages 3 and 4: Load Video -> Show-1 Upscale Video -> Save Video. The frames "
        "are scaled to 64x40, upscaled x4 in pixel space (bilinear first frame, no gated download) and then to 576x320 "
        "by the expert latent SR model; frame rate and audio pass through. Describe the video in the prompt.",
        (
            DiagramStep("your video", "frames, fps, audio"),
            DiagramStep("scaled", "64x40", (64, 40)),
            DiagramStep("3 pixel SR", "x4", (256, 160)),
            DiagramStep("4 latent SR", "+ audio", (576, 320)),
        ),
    )
    text = _encoders(g, "a cat running through a garden", title="Describe the input video")
    upscaled = g.add(
        "Show1UpscaleVideo",
        "Stages 3-4: upscale the video",
        video=g.add("LoadVideo", file="show1_input.mp4")[0],
        pixel_sr_model=g.add("Show1PixelSRModelLoader")[0],
        t5_embeds=text[0],
        latent_sr_model=g.add("Show1LatentSRModelLoader")[0],
        clip_embeds=text[1],
    )
    g.add("SaveVideo", video=upscaled[0], filename_prefix="video/show1_upscaled")
    return g


def stage4_on_other_frames() -> Graph:
    """Show-1's expert latent SR refining another model's video, through the LATENT nodes."""
    g = Graph(
        "show1_mixed_stage4_on_other_frames",
        "Stage 4 on another video",
        "Show-1 stage 4 on another model's frames: a video from any model (load it, or wire its frames in place of "
        "Load Video) is scaled to 576x320 with core nodes, encoded to a Show-1 LATENT, refined by the expert latent SR "
        "UNet and decoded; its audio and frame rate pass through. The LATENT sockets accept other latent video nodes. "
        "Describe the video in the prompt.",
        (
            DiagramStep("any video", "frames, fps, audio"),
            DiagramStep("scaled", "576x320", (576, 320)),
            DiagramStep("4 latent refine", "LATENT", (576, 320)),
            DiagramStep("decoded", "+ audio", (576, 320)),
        ),
    )
    components = g.add("GetVideoComponents", video=g.add("LoadVideo", file="other_model_output.mp4")[0])
    sized = g.add("ImageScale", "Scale to 576x320", image=components[0], upscale_method="area", width=576, height=320, crop="center")
    text = _encoders(g, "a cat running through a garden", title="Describe the input video", t5=False)
    model = g.add("Show1LatentSRModelLoader")
    latent = g.add("Show1VAEEncode", model=model[0], images=sized[0])
    refined = g.add("Show1LatentRefine", "Stage 4: latent refine", model=model[0], clip_embeds=text[1], latent=latent[0])
    frames = g.add("Show1VAEDecode", model=model[0], latent=refined[0])
    _save(g, frames[0], components[2], "video/show1_stage4", audio=components[1])
    return g


TEMPLATES = (text_to_video, keyframes_preview, upscale_any_video, stage4_on_other_frames)
