"""The single source of the shipped workflows: writes each one in ComfyUI's UI format and API format.

Run ``python workflows/build.py`` after changing a node's inputs or a workflow below; the
tests fail while the committed JSON differs from what this file builds. UI files
(``workflows/<name>.json``, v0.4 graphs that ComfyUI's Templates browser lists) hold
``widgets_values`` in input order with ``"fixed"`` after every seed; API files
(``workflows/api/<name>.json``) are what ``POST /prompt`` takes.

Widget values not given below are the nodes' defaults, which are the paper's settings.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
PACK_ROOT = HERE.parent
PACK_MODULE = "show1_pack_for_workflows"
PACK_CNR_ID = "show1"
CORE_CNR_ID = "comfy-core"
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
CONTROLLED_NAMES = ("seed", "noise_seed")
UPLOAD_OPTIONS = ("image_upload", "video_upload")
COLUMN_WIDTH, NODE_WIDTH, ROW_HEIGHT, NODE_GAP = 400, 340, 26, 40


def _import_file(name: str, path: Path, package: bool = False) -> ModuleType:
    """Import a file under ``name`` (a package when ``package``), as ComfyUI imports a pack."""
    if name in sys.modules:
        return sys.modules[name]
    locations = [str(path.parent)] if package else None
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=locations)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def node_classes() -> tuple[dict[str, type], dict[str, str]]:
    """Every node class the workflows use (the pack's and ComfyUI core's), and their display names."""
    pack = _import_file(PACK_MODULE, PACK_ROOT / "__init__.py", package=True)
    core = _import_file("show1_workflow_core_nodes", HERE / "core_nodes.py")
    return {**core.CORE_NODES, **pack.NODE_CLASS_MAPPINGS}, {**core.CORE_DISPLAY_NAMES, **pack.NODE_DISPLAY_NAME_MAPPINGS}


@dataclass(frozen=True)
class InputSpec:
    """One declared input of a node class."""

    name: str
    type: Any
    options: dict
    required: bool

    @property
    def is_widget(self) -> bool:
        """Widgets hold values in the node; everything else is a socket."""
        kind = "COMBO" if isinstance(self.type, list) else self.type
        return kind in WIDGET_TYPES and not self.options.get("forceInput", False)

    @property
    def default(self) -> Any:
        """The declared default (a combo's first option when it declares none)."""
        if "default" in self.options:
            return self.options["default"]
        if isinstance(self.type, list) and self.type:
            return self.type[0]
        raise ValueError(f"widget {self.name!r} has no default; give its value in the workflow")

    @property
    def extra_widget_value(self) -> str | None:
        """The value of the widget the frontend adds after this one: a seed control or an upload button."""
        if self.type == "INT" and (self.name in CONTROLLED_NAMES or self.options.get("control_after_generate")):
            return "fixed"
        if any(self.options.get(key) for key in UPLOAD_OPTIONS):
            return "image"
        return None


def input_specs(cls: type) -> list[InputSpec]:
    """A class's inputs in declaration order: required, then optional."""
    declared = cls.INPUT_TYPES()
    return [
        InputSpec(name, spec[0], spec[1] if len(spec) > 1 else {}, section == "required")
        for section in ("required", "optional")
        for name, spec in declared.get(section, {}).items()
    ]


@dataclass(frozen=True)
class Output:
    """An output socket of a node in a workflow."""

    node: "Node"
    slot: int


@dataclass
class Node:
    """A node of a workflow: its class, title and the values or links of its inputs."""

    id: int
    class_type: str
    title: str | None
    inputs: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, slot: int) -> Output:
        return Output(self, slot)


class Graph:
    """A workflow under construction."""

    def __init__(self, name: str, description: str):
        self.name = name
        self.description = description
        self.nodes: list[Node] = []

    def add(self, class_type: str, title: str | None = None, **inputs: Any) -> Node:
        """Add a node; ``inputs`` are widget values or :class:`Output` links."""
        node = Node(len(self.nodes) + 1, class_type, title, inputs)
        self.nodes.append(node)
        return node


def _check_inputs(node: Node, specs: list[InputSpec]) -> None:
    unknown = set(node.inputs) - {s.name for s in specs}
    if unknown:
        raise ValueError(f"{node.class_type} has no input(s) {sorted(unknown)}")
    for spec in specs:
        value = node.inputs.get(spec.name)
        if not spec.is_widget and spec.required and not isinstance(value, Output):
            raise ValueError(f"{node.class_type}.{spec.name} must be linked")


def _value(node: Node, spec: InputSpec) -> Any:
    """A widget's value: the one given, else its default (a linked widget keeps its default in the UI)."""
    value = node.inputs.get(spec.name)
    return spec.default if value is None or isinstance(value, Output) else value


def to_api(graph: Graph, classes: dict[str, type], names: dict[str, str]) -> dict:
    """The API (``/prompt``) format: ``{id: {inputs, class_type, _meta}}``, links as ``[source id, slot]``."""
    prompt = {}
    for node in graph.nodes:
        specs = input_specs(classes[node.class_type])
        _check_inputs(node, specs)
        inputs = {}
        for spec in specs:
            value = node.inputs.get(spec.name)
            if isinstance(value, Output):
                inputs[spec.name] = [str(value.node.id), value.slot]
            elif spec.is_widget:
                inputs[spec.name] = _value(node, spec)
        prompt[str(node.id)] = {"inputs": inputs, "class_type": node.class_type, "_meta": {"title": node.title or names[node.class_type]}}
    return prompt


def _depths(graph: Graph) -> dict[int, int]:
    depth: dict[int, int] = {}
    for node in graph.nodes:  # nodes are added after the nodes they link from
        sources = [v.node.id for v in node.inputs.values() if isinstance(v, Output)]
        depth[node.id] = 1 + max((depth[s] for s in sources), default=-1)
    return depth


def _widgets_values(node: Node, specs: list[InputSpec]) -> list:
    values = []
    for spec in specs:
        if spec.is_widget:
            values.append(_value(node, spec))
            if spec.extra_widget_value is not None:
                values.append(spec.extra_widget_value)
    return values


def to_ui(graph: Graph, classes: dict[str, type], names: dict[str, str]) -> dict:
    """The UI (graph, v0.4) format the ComfyUI frontend saves and loads."""
    depths = _depths(graph)
    links: list[list] = []
    outputs: dict[int, list[dict]] = {}
    column_y: dict[int, int] = {}
    ui_nodes = []
    for order, node in enumerate(sorted(graph.nodes, key=lambda n: (depths[n.id], n.id))):
        cls = classes[node.class_type]
        specs = input_specs(cls)
        _check_inputs(node, specs)
        sockets = [s for s in specs if not s.is_widget]
        linked_widgets = [s for s in specs if s.is_widget and isinstance(node.inputs.get(s.name), Output)]
        ui_inputs = []
        for spec in sockets + linked_widgets:
            entry: dict[str, Any] = {"name": spec.name, "type": spec.type, "link": None}
            if spec.is_widget:
                entry["widget"] = {"name": spec.name}
            elif not spec.required:
                entry["shape"] = 7
            source = node.inputs.get(spec.name)
            if isinstance(source, Output):
                link_id = len(links) + 1
                links.append([link_id, source.node.id, source.slot, node.id, len(ui_inputs), classes[source.node.class_type].RETURN_TYPES[source.slot]])
                entry["link"] = link_id
                outputs[source.node.id][source.slot]["links"].append(link_id)
            ui_inputs.append(entry)
        outputs[node.id] = [
            {"name": name, "type": type_name, "links": [], "slot_index": slot}
            for slot, (type_name, name) in enumerate(zip(cls.RETURN_TYPES, cls.RETURN_NAMES))
        ]
        widgets = _widgets_values(node, specs)
        height = ROW_HEIGHT * (2 + len(cls.RETURN_TYPES) + len(ui_inputs) + len(widgets))
        x, y = 40 + COLUMN_WIDTH * depths[node.id], column_y.get(depths[node.id], 40)
        column_y[depths[node.id]] = y + height + NODE_GAP
        ui_node = {
            "id": node.id,
            "type": node.class_type,
            "pos": [x, y],
            "size": [NODE_WIDTH, height],
            "flags": {},
            "order": order,
            "mode": 0,
            "inputs": ui_inputs,
            "outputs": outputs[node.id],
            "properties": {"cnr_id": PACK_CNR_ID if node.class_type.startswith("Show1") else CORE_CNR_ID, "Node name for S&R": node.class_type},
            "widgets_values": widgets,
        }
        if node.title:
            ui_node["title"] = node.title
        ui_nodes.append(ui_node)
    return {
        "last_node_id": max(n.id for n in graph.nodes),
        "last_link_id": len(links),
        "nodes": sorted(ui_nodes, key=lambda n: n["id"]),
        "links": links,
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 0.75, "offset": [0, 0]}, "show1": {"description": graph.description}},
        "version": 0.4,
    }


def _encoders(g: Graph, prompt: str, clip: bool = True, title: str | None = None, t5: bool = True) -> Node:
    """Show-1 Text Encode with only the encoders the graph uses connected (an unconnected one never loads)."""
    inputs: dict = {"prompt": prompt}
    if t5:
        inputs["t5"] = g.add("Show1T5Loader")[0]
    if clip:
        inputs["clip"] = g.add("Show1CLIPLoader")[0]
    return g.add("Show1TextEncode", title, **inputs)


def _loaded_video(g: Graph, file: str, width: int, height: int, title: str) -> tuple[Node, Node]:
    """Load Video -> Get Video Components -> Upscale Image (centre crop): the components and the resized frames."""
    components = g.add("GetVideoComponents", video=g.add("LoadVideo", file=file)[0])
    resized = g.add("ImageScale", title, image=components[0], upscale_method="area", width=width, height=height, crop="center")
    return components, resized


def _save(g: Graph, images: Output, fps: Output, prefix: str) -> None:
    video = g.add("CreateVideo", images=images, fps=fps)
    g.add("SaveVideo", video=video[0], filename_prefix=prefix)


def text_to_video() -> Graph:
    """The full cascade with the paper's settings, IF-II-L first frame included."""
    g = Graph(
        "show1_text_to_video",
        "Show-1 text-to-video with the paper's settings: keyframes, interpolation, pixel SR (IF-II-L first frame) and "
        "expert latent SR to 29 frames at 576x320, 8 fps.",
    )
    text = _encoders(g, "a panda playing guitar on the beach")
    keyframes = g.add("Show1Keyframes", "Stage 1: keyframes", model=g.add("Show1KeyframeModelLoader")[0], t5_embeds=text[0])
    interpolated = g.add(
        "Show1Interpolation", "Stage 2: interpolation", model=g.add("Show1InterpolationModelLoader")[0], t5_embeds=text[0],
        images=keyframes[0], fps=keyframes[1],
    )
    pixel_sr = g.add(
        "Show1PixelSR", "Stage 3: pixel super-resolution", model=g.add("Show1PixelSRModelLoader")[0], t5_embeds=text[0],
        images=interpolated[0], fps=interpolated[1], first_frame_model=g.add("Show1FirstFrameModelLoader")[0],
    )
    latent_sr = g.add(
        "Show1LatentSR", "Stage 4: expert latent super-resolution", model=g.add("Show1LatentSRModelLoader")[0],
        clip_embeds=text[1], images=pixel_sr[0], fps=pixel_sr[1],
    )
    _save(g, latent_sr[0], latent_sr[1], "video/show1_text_to_video")
    return g


def keyframes_preview() -> Graph:
    """Stage 1 only: a fast look at motion and text alignment."""
    g = Graph(
        "show1_keyframes_preview",
        "Show-1 stage 1 only: 8 keyframes at 64x40 and 2 fps, a fast preview of motion and text alignment before "
        "running the whole cascade.",
    )
    text = _encoders(g, "a panda playing guitar on the beach", clip=False)
    keyframes = g.add("Show1Keyframes", "Stage 1: keyframes", model=g.add("Show1KeyframeModelLoader")[0], t5_embeds=text[0])
    _save(g, keyframes[0], keyframes[1], "video/show1_keyframes")
    return g


def upscale_any_video() -> Graph:
    """A loaded video through pixel SR and expert latent SR, VIDEO in and VIDEO out."""
    g = Graph(
        "show1_upscale_any_video",
        "Upscale any video with Show-1's stages 3 and 4: Load Video -> Show-1 Upscale Video -> Save Video. The frames "
        "are scaled to 64x40, upscaled x4 in pixel space (bilinear first frame, no gated download) and then to 576x320 "
        "by the expert latent SR model; frame rate and audio pass through. Describe the video in the prompt.",
    )
    text = _encoders(g, "a cat running through a garden", title="Describe the input video")
    upscaled = g.add(
        "Show1UpscaleVideo", "Stages 3-4: upscale the video", video=g.add("LoadVideo", file="show1_input.mp4")[0],
        pixel_sr_model=g.add("Show1PixelSRModelLoader")[0], t5_embeds=text[0],
        latent_sr_model=g.add("Show1LatentSRModelLoader")[0], clip_embeds=text[1],
    )
    g.add("SaveVideo", video=upscaled[0], filename_prefix="video/show1_upscaled")
    return g


def stage4_on_other_frames() -> Graph:
    """Show-1's expert latent SR refining another model's video, through the LATENT nodes."""
    g = Graph(
        "show1_mixed_stage4_on_other_frames",
        "Show-1 stage 4 on another model's frames: a video from any model (load it, or wire its frames in place of "
        "Load Video) is scaled to 576x320 with core nodes, encoded to a Show-1 LATENT, refined by the expert latent SR "
        "UNet and decoded. The LATENT sockets accept other latent video nodes.",
    )
    components, sized = _loaded_video(g, "other_model_output.mp4", 576, 320, "Scale to 576x320")
    text = _encoders(g, "a cat running through a garden", title="Describe the input video", t5=False)
    model = g.add("Show1LatentSRModelLoader")
    latent = g.add("Show1VAEEncode", model=model[0], images=sized[0])
    refined = g.add("Show1LatentRefine", "Stage 4: latent refine", model=model[0], clip_embeds=text[1], latent=latent[0])
    frames = g.add("Show1VAEDecode", model=model[0], latent=refined[0])
    _save(g, frames[0], components[2], "video/show1_stage4")
    return g


WORKFLOWS = (text_to_video, keyframes_preview, upscale_any_video, stage4_on_other_frames)


def render(data: dict) -> str:
    """JSON text as committed."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def build_all() -> dict[Path, str]:
    """Every workflow file (UI and API) and its text, relative to ``workflows/``."""
    classes, names = node_classes()
    files = {}
    for make in WORKFLOWS:
        graph = make()
        files[Path(f"{graph.name}.json")] = render(to_ui(graph, classes, names))
        files[Path("api") / f"{graph.name}.json"] = render(to_api(graph, classes, names))
    return files


def main() -> None:
    """Write every workflow file next to this script."""
    for relative, text in build_all().items():
        path = HERE / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(PACK_ROOT)}")


if __name__ == "__main__":
    main()
