"""A workflow under construction, written in ComfyUI's API format and in its UI (graph) format.

The UI format is laid out for ComfyUI's frontend: columns by link depth, each node wide enough
for its title (the frontend draws titles in a 14 px font, about 0.6 em per character, and cuts
them at the node's edge), a Load Video node tall enough for the video preview the frontend adds
below its widgets, and the template's Note in a column of its own on the left.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

PACK_CNR_ID = "show1"
CORE_CNR_ID = "comfy-core"
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
CONTROLLED_NAMES = ("seed", "noise_seed")
UPLOAD_OPTIONS = ("image_upload", "video_upload")
NODE_WIDTH, ROW_HEIGHT, NODE_GAP, COLUMN_GAP, MARGIN = 340, 26, 40, 60, 40
TITLE_CHARACTER_PX = 14 * 0.6
"""Width the frontend gives a title character (LiteGraph's 14 px title font, 0.6 em per character)."""
TITLE_PADDING_PX = 60
"""Room beside a node's title: the collapse dot on the left, the badge area on the right."""
PREVIEW_HEIGHTS = {"LoadVideo": 460}
"""Height to reserve for nodes whose widgets the frontend follows with a media preview."""
NOTE_TYPE = "Note"
NOTE_WIDTH, NOTE_LINE_HEIGHT, NOTE_COLORS = 440, 20, {"color": "#432", "bgcolor": "#653"}
"""A Note is a frontend-only node (never queued); yellow, as the frontend colours notes."""
NOTE_CHARACTERS_PER_LINE = 52


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


@dataclass(frozen=True)
class DiagramStep:
    """One box of a template's thumbnail: what a step makes, and the frame size it makes (if any)."""

    label: str
    detail: str
    size: tuple[int, int] | None = None


class Graph:
    """A workflow under construction, with the title and thumbnail diagram its template ships with."""

    def __init__(self, name: str, title: str, description: str, diagram: tuple[DiagramStep, ...]):
        self.name = name
        self.title = title
        self.description = description
        self.diagram = diagram
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


def title_width(title: str) -> int:
    """The width a node needs for the frontend to show ``title`` uncut."""
    return math.ceil(TITLE_CHARACTER_PX * len(title)) + TITLE_PADDING_PX


def _note_height(text: str) -> int:
    lines = sum(max(1, math.ceil(len(line) / NOTE_CHARACTERS_PER_LINE)) for line in text.split("\n"))
    return NOTE_LINE_HEIGHT * lines + 2 * ROW_HEIGHT


def _note_node(note: str, node_id: int, order: int) -> dict:
    """The template's Note, a frontend-only node the frontend never queues."""
    return {
        "id": node_id,
        "type": NOTE_TYPE,
        "pos": [MARGIN, MARGIN],
        "size": [NOTE_WIDTH, _note_height(note)],
        "flags": {},
        "order": order,
        "mode": 0,
        "inputs": [],
        "outputs": [],
        "title": "Read me first",
        "properties": {"text": ""},
        "widgets_values": [note],
        **NOTE_COLORS,
    }


def to_ui(graph: Graph, classes: dict[str, type], names: dict[str, str], note: str) -> dict:
    """The UI (graph, v0.4) format the ComfyUI frontend saves and loads, laid out for it, opening with ``note``."""
    depths = _depths(graph)
    ordered = sorted(graph.nodes, key=lambda n: (depths[n.id], n.id))
    widths = {node.id: max(NODE_WIDTH, title_width(node.title or names[node.class_type])) for node in graph.nodes}
    column_x: dict[int, int] = {}
    x = MARGIN + NOTE_WIDTH + COLUMN_GAP
    for depth in sorted(set(depths.values())):
        column_x[depth] = x
        x += max(widths[n.id] for n in graph.nodes if depths[n.id] == depth) + COLUMN_GAP
    links: list[list] = []
    outputs: dict[int, list[dict]] = {}
    column_y: dict[int, int] = {}
    ui_nodes = []
    for order, node in enumerate(ordered):
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
                links.append(
                    [
                        link_id,
                        source.node.id,
                        source.slot,
                        node.id,
                        len(ui_inputs),
                        classes[source.node.class_type].RETURN_TYPES[source.slot],
                    ]
                )
                entry["link"] = link_id
                outputs[source.node.id][source.slot]["links"].append(link_id)
            ui_inputs.append(entry)
        outputs[node.id] = [
            {"name": name, "type": type_name, "links": [], "slot_index": slot}
            for slot, (type_name, name) in enumerate(zip(cls.RETURN_TYPES, cls.RETURN_NAMES))
        ]
        widgets = _widgets_values(node, specs)
        height = max(ROW_HEIGHT * (2 + len(cls.RETURN_TYPES) + len(ui_inputs) + len(widgets)), PREVIEW_HEIGHTS.get(node.class_type, 0))
        depth = depths[node.id]
        y = column_y.get(depth, MARGIN)
        column_y[depth] = y + height + NODE_GAP
        ui_node = {
            "id": node.id,
            "type": node.class_type,
            "pos": [column_x[depth], y],
            "size": [widths[node.id], height],
            "flags": {},
            "order": order,
            "mode": 0,
            "inputs": ui_inputs,
            "outputs": outputs[node.id],
            "properties": {
                "cnr_id": PACK_CNR_ID if node.class_type.startswith("Show1") else CORE_CNR_ID,
                "Node name for S&R": node.class_type,
            },
            "widgets_values": widgets,
        }
        if node.title:
            ui_node["title"] = node.title
        ui_nodes.append(ui_node)
    note_id = max(n.id for n in graph.nodes) + 1
    ui_nodes.append(_note_node(note, note_id, len(ordered)))
    return {
        "last_node_id": note_id,
        "last_link_id": len(links),
        "nodes": sorted(ui_nodes, key=lambda n: n["id"]),
        "links": links,
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 0.75, "offset": [0, 0]}, "show1": {"description": graph.description}},
        "version": 0.4,
    }
