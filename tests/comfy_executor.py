"""A ComfyUI-faithful executor for tests, and a validator for UI-format workflows.

:func:`validate_prompt` checks an API-format prompt the way ComfyUI's
``execution.validate_prompt``/``validate_inputs`` do (read from Comfy-Org/ComfyUI
``execution.py`` and ``comfy_execution/validation.py``): unknown classes, a missing output
node, missing required inputs, malformed links, link types (exact, ``*`` or overlapping
comma-separated types, case-sensitive), literal coercion, ``min``/``max``, combo values,
``VALIDATE_INPUTS`` (whose declared inputs skip the built-in checks) and dependency cycles,
with ComfyUI's error types. :class:`Executor` then runs the outputs' ancestors in
dependency order, one cached node object per node id, checking for Cancel before every
node as ``nodes.before_node_execution`` does.

:func:`validate_ui_workflow` checks a v0.4 graph as the frontend needs it: link ends and
types, sockets, and ``widgets_values`` matching the declared widgets in order (plus the
seed control and upload widgets the frontend adds). :func:`ui_to_api` converts a graph the
way the frontend's "queue prompt" does, so a UI file and an API file can be compared.
"""

from __future__ import annotations

import copy
import importlib
import inspect
from dataclasses import dataclass
from typing import Any

import torch

WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
CONTROLLED_NAMES = ("seed", "noise_seed")
UPLOAD_OPTIONS = ("image_upload", "video_upload")
HIDDEN_VALUES = ("PROMPT", "EXTRA_PNGINFO", "UNIQUE_ID")


class PromptError(Exception):
    """ComfyUI's HTTP 400 answer to an invalid prompt: ``error`` and ``node_errors``."""

    def __init__(self, error: dict, node_errors: dict):
        super().__init__(f"{error['message']}: {error['details']}")
        self.error = error
        self.node_errors = node_errors

    def error_types(self) -> set[str]:
        """Every error type reported, for the prompt and for each node."""
        return {self.error["type"]} | {e["type"] for node in self.node_errors.values() for e in node["errors"]}


def _error(kind: str, message: str, details: str, **extra: Any) -> dict:
    return {"type": kind, "message": message, "details": details, "extra_info": extra}


def get_input_info(cls: type, name: str, declared: dict | None = None) -> tuple[Any, str | None, dict | None]:
    """(type, category, options) of a declared input; ``(None, None, None)`` when undeclared."""
    declared = declared if declared is not None else cls.INPUT_TYPES()
    for category in ("required", "optional", "hidden"):
        if name in declared.get(category, {}):
            spec = declared[category][name]
            if category == "hidden":
                return spec, category, {}
            return spec[0], category, spec[1] if len(spec) > 1 else {}
    return None, None, None


def types_compatible(received: Any, expected: Any) -> bool:
    """ComfyUI's link check: equal, ``*``, a list into COMBO, or overlapping comma-separated types."""
    if received == expected or "*" in (received, expected):
        return True
    if isinstance(received, list) and expected == "COMBO":
        return True
    if not isinstance(received, str) or not isinstance(expected, str):
        return False
    received_set = {t.strip() for t in received.split(",")}
    expected_set = {t.strip() for t in expected.split(",")}
    return "*" in received_set or "*" in expected_set or bool(received_set & expected_set)


def _is_link(value: Any) -> bool:
    return isinstance(value, list)


def _coerce(value: Any, input_type: Any) -> Any:
    if isinstance(value, dict) and "__value__" in value:
        value = value["__value__"]
    converters = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}
    return converters[input_type](value) if isinstance(input_type, str) and input_type in converters else value


def _validate_function(cls: type) -> tuple[Any, list[str], bool]:
    function = getattr(cls, "VALIDATE_INPUTS", None)
    if function is None:
        return None, [], False
    spec = inspect.getfullargspec(function)
    return function, spec.args, spec.varkw is not None


def _check_literal(name: str, value: Any, input_type: Any, options: dict) -> dict | None:
    info = {"input_name": name, "received_value": value}
    if "min" in options and value < options["min"]:
        return _error("value_smaller_than_min", f"Value {value} smaller than min of {options['min']}", name, **info)
    if "max" in options and value > options["max"]:
        return _error("value_bigger_than_max", f"Value {value} bigger than max of {options['max']}", name, **info)
    if isinstance(input_type, list) or input_type == "COMBO":
        choices = input_type if isinstance(input_type, list) else options.get("options", [])
        if value not in choices:
            listing = f"(list of length {len(choices)})" if len(choices) > 20 else str(choices)
            return _error("value_not_in_list", "Value not in list", f"{name}: {value!r} not in {listing}", **info)
    return None


def _validate_node(prompt: dict, classes: dict, node_id: str, validated: dict, visiting: list) -> tuple:
    if node_id in validated:
        return validated[node_id]
    if node_id in visiting:
        cycle = visiting[visiting.index(node_id) :] + [node_id]
        path = " -> ".join(f"{n} ({prompt[n]['class_type']})" for n in cycle)
        for member in dict.fromkeys(cycle):
            validated[member] = (False, [_error("dependency_cycle", "Dependency cycle detected", path, node_id=member)], member)
        return validated[node_id]

    inputs = prompt[node_id]["inputs"]
    cls = classes[prompt[node_id]["class_type"]]
    declared = cls.INPUT_TYPES()
    function, function_inputs, has_kwargs = _validate_function(cls)
    errors: list[dict] = []
    valid = True
    for name in [*declared.get("required", {}), *declared.get("optional", {})]:
        input_type, category, options = get_input_info(cls, name, declared)
        if name not in inputs:
            if category == "required":
                errors.append(_error("required_input_missing", "Required input is missing", name, input_name=name))
            continue
        value = inputs[name]
        if _is_link(value):
            if len(value) != 2:
                errors.append(_error("bad_linked_input", "Bad linked input, must be a length-2 list of [node_id, slot_index]", name))
                continue
            source_id, slot = value
            received = classes[prompt[source_id]["class_type"]].RETURN_TYPES[slot]
            if "input_types" not in function_inputs and not types_compatible(received, input_type):
                details = f"{name}, received_type({received}) mismatch input_type({input_type})"
                errors.append(_error("return_type_mismatch", "Return type mismatch between linked nodes", details, input_name=name))
                continue
            visiting.append(node_id)
            try:
                if _validate_node(prompt, classes, source_id, validated, visiting)[0] is False:
                    valid = False
            finally:
                visiting.pop()
            continue
        try:
            value = inputs[name] = _coerce(value, input_type)
        except (TypeError, ValueError) as err:
            errors.append(
                _error("invalid_input_type", f"Failed to convert an input value to a {input_type} value", f"{name}, {value}, {err}")
            )
            continue
        if name not in function_inputs and not has_kwargs:
            problem = _check_literal(name, value, input_type, options)
            if problem is not None:
                errors.append(problem)

    if function is not None and (function_inputs or has_kwargs):
        arguments = {name: (None if _is_link(value) else value) for name, value in inputs.items() if name in function_inputs or has_kwargs}
        answer = function(**arguments)
        if answer is not True:
            for name in arguments or (None,):
                details = name if answer is False else f"{name} - {answer}"
                errors.append(_error("custom_validation_failed", "Custom validation failed for node", details, input_name=name))

    previous = validated.get(node_id, (True, [], node_id))
    result = (previous[0] and valid and not errors, previous[1] + [e for e in errors if e not in previous[1]], node_id)
    validated[node_id] = result
    return result


def validate_prompt(prompt: dict, classes: dict) -> tuple[bool, dict | None, list[str], dict]:
    """ComfyUI's ``validate_prompt``: (valid, error, outputs that validated, node_errors). Coerces literals in place."""
    outputs = []
    for node_id, node in prompt.items():
        if "class_type" not in node:
            title = node.get("_meta", {}).get("title")
            return (
                False,
                _error("missing_node_type", f"Node '{title or f'ID #{node_id}'}' has no class_type.", f"Node ID '#{node_id}'"),
                [],
                {},
            )
        if node["class_type"] not in classes:
            title = node.get("_meta", {}).get("title", node["class_type"])
            message = f"Node '{title}' not found. The custom node may not be installed."
            return False, _error("missing_node_type", message, f"Node ID '#{node_id}'", class_type=node["class_type"]), [], {}
        if getattr(classes[node["class_type"]], "OUTPUT_NODE", False) is True:
            outputs.append(node_id)
    if not outputs:
        return False, _error("prompt_no_outputs", "Prompt has no outputs", ""), [], {}

    good, failures, node_errors, validated = [], [], {}, {}
    for output in outputs:
        try:
            valid, reasons, _ = _validate_node(prompt, classes, output, validated, [])
        except Exception as err:  # ComfyUI reports any exception as a validation failure of the output
            valid, reasons = False, [_error("exception_during_validation", "Exception when validating node", str(err))]
            validated[output] = (False, reasons, output)
        if valid:
            good.append(output)
            continue
        failures.append((output, reasons))
        for node_id, (node_valid, node_reasons, _) in validated.items():
            if node_valid is not True and node_reasons:
                entry = node_errors.setdefault(
                    node_id, {"errors": node_reasons, "dependent_outputs": [], "class_type": prompt[node_id]["class_type"]}
                )
                entry["dependent_outputs"].append(output)
    if not good:
        details = "\n".join(f"{e['message']}: {e['details']}" for _, reasons in failures for e in reasons)
        return False, _error("prompt_outputs_failed_validation", "Prompt outputs failed validation", details), [], node_errors
    return True, None, good, node_errors


@dataclass
class Execution:
    """Everything a run produced: each node's outputs and the ``ui`` dicts of output nodes."""

    outputs: dict[str, tuple]
    ui: dict[str, dict]


class Executor:
    """Validates and runs API-format prompts; node objects are cached per node id across runs, as ComfyUI does."""

    def __init__(self, classes: dict[str, type]):
        self.classes = classes
        self.objects: dict[str, Any] = {}
        for node_id, cls in classes.items():
            if getattr(cls, "INPUT_IS_LIST", False) or any(getattr(cls, "OUTPUT_IS_LIST", ())):
                raise NotImplementedError(f"{node_id}: list inputs/outputs are not supported by this executor")

    def validate(self, prompt: dict) -> tuple[dict, list[str]]:
        """A coerced copy of the prompt and its outputs; :class:`PromptError` as ComfyUI would answer 400."""
        prompt = copy.deepcopy(prompt)
        valid, error, outputs, node_errors = validate_prompt(prompt, self.classes)
        if not valid:
            raise PromptError(error, node_errors)
        return prompt, outputs

    def order(self, prompt: dict, outputs: list[str]) -> list[str]:
        """The outputs' ancestors, each after every node it links from (ties in node id order)."""
        needed, pending = set(), list(outputs)
        while pending:
            node_id = pending.pop()
            if node_id not in needed:
                needed.add(node_id)
                pending += [v[0] for v in prompt[node_id]["inputs"].values() if _is_link(v)]
        done: list[str] = []
        while len(done) < len(needed):
            ready = sorted(
                (n for n in needed if n not in done and all(v[0] in done for v in prompt[n]["inputs"].values() if _is_link(v))),
                key=lambda n: (len(n), n),
            )
            done.append(ready[0])
        return done

    def run(self, prompt: dict, extra_data: dict | None = None) -> Execution:
        """Validate, then execute in dependency order, under ``torch.inference_mode`` as ComfyUI's PromptExecutor does."""
        prompt, outputs = self.validate(prompt)
        with torch.inference_mode():
            return self._execute(prompt, outputs, extra_data or {})

    def _execute(self, prompt: dict, outputs: list[str], extra_data: dict) -> Execution:
        mm = importlib.import_module("comfy.model_management")
        results: dict[str, tuple] = {}
        ui: dict[str, dict] = {}
        for node_id in self.order(prompt, outputs):
            mm.throw_exception_if_processing_interrupted()  # nodes.before_node_execution()
            cls = self.classes[prompt[node_id]["class_type"]]
            if not isinstance(self.objects.get(node_id), cls):
                self.objects[node_id] = cls()
            returned = getattr(self.objects[node_id], cls.FUNCTION)(**self._arguments(prompt, node_id, results, extra_data))
            if isinstance(returned, dict):
                if "ui" in returned:
                    ui[node_id] = returned["ui"]
                returned = returned.get("result", ())
            if len(returned) != len(cls.RETURN_TYPES):
                raise AssertionError(f"{cls.__name__} returned {len(returned)} values for {len(cls.RETURN_TYPES)} outputs")
            results[node_id] = tuple(returned)
        return Execution(results, ui)

    def _arguments(self, prompt: dict, node_id: str, results: dict, extra_data: dict) -> dict:
        cls = self.classes[prompt[node_id]["class_type"]]
        arguments = {name: results[value[0]][value[1]] if _is_link(value) else value for name, value in prompt[node_id]["inputs"].items()}
        hidden = {"PROMPT": prompt, "EXTRA_PNGINFO": extra_data.get("extra_pnginfo"), "UNIQUE_ID": node_id}
        for name, kind in cls.INPUT_TYPES().get("hidden", {}).items():
            if kind in HIDDEN_VALUES:
                arguments[name] = hidden[kind]
        return arguments


def _declared_inputs(cls: type) -> list[tuple[str, Any, dict, bool]]:
    declared = cls.INPUT_TYPES()
    return [
        (name, spec[0], spec[1] if len(spec) > 1 else {}, section == "required")
        for section in ("required", "optional")
        for name, spec in declared.get(section, {}).items()
    ]


def _is_widget(input_type: Any, options: dict) -> bool:
    kind = "COMBO" if isinstance(input_type, list) else input_type
    return kind in WIDGET_TYPES and not options.get("forceInput", False)


def _widget_layout(cls: type) -> list[tuple[str | None, Any, dict]]:
    """The frontend's widgets in order: (input name, type, options), with ``None`` for added control/upload widgets."""
    layout = []
    for name, input_type, options, _ in _declared_inputs(cls):
        if not _is_widget(input_type, options):
            continue
        layout.append((name, input_type, options))
        if input_type == "INT" and (name in CONTROLLED_NAMES or options.get("control_after_generate")):
            layout.append((None, "CONTROL", {}))
        elif any(options.get(key) for key in UPLOAD_OPTIONS):
            layout.append((None, "UPLOAD", {}))
    return layout


def _check_widget_value(where: str, name: str | None, input_type: Any, options: dict, value: Any) -> list[str]:
    if input_type == "CONTROL":
        return [] if value in CONTROL_VALUES else [f"{where}: control value {value!r} after the seed is not one of {CONTROL_VALUES}"]
    if input_type == "UPLOAD":
        return []
    python_type = (
        None if isinstance(input_type, list) else {"INT": int, "FLOAT": (int, float), "STRING": str, "BOOLEAN": bool}.get(input_type)
    )
    if python_type is not None and (not isinstance(value, python_type) or (input_type == "INT" and isinstance(value, bool))):
        return [f"{where}: widget {name!r} holds {value!r}, not a {input_type}"]
    problem = _check_literal(name, value, input_type, options)
    return [f"{where}: widget {problem['details']}: {problem['message']}"] if problem else []


def validate_ui_workflow(workflow: dict, classes: dict[str, type]) -> list[str]:
    """Problems of a v0.4 UI workflow (an empty list when it loads and converts cleanly)."""
    errors = []
    if workflow.get("version") != 0.4:
        errors.append(f"version is {workflow.get('version')!r}, not 0.4")
    nodes = {node["id"]: node for node in workflow["nodes"]}
    if len(nodes) != len(workflow["nodes"]):
        errors.append("node ids are not unique")
    links = {link[0]: link for link in workflow["links"]}
    if len(links) != len(workflow["links"]):
        errors.append("link ids are not unique")
    if workflow.get("last_node_id", -1) < max(nodes, default=0) or workflow.get("last_link_id", -1) < max(links, default=0):
        errors.append("last_node_id/last_link_id are smaller than the ids in use")

    for link_id, origin_id, origin_slot, target_id, target_slot, link_type in workflow["links"]:
        where = f"link {link_id}"
        if origin_id not in nodes or target_id not in nodes:
            errors.append(f"{where}: connects a node that does not exist")
            continue
        origin, target = nodes[origin_id], nodes[target_id]
        outputs, inputs = origin.get("outputs", []), target.get("inputs", [])
        if origin_slot >= len(outputs) or target_slot >= len(inputs):
            errors.append(f"{where}: slot out of range")
            continue
        declared_out = classes[origin["type"]].RETURN_TYPES[origin_slot] if origin["type"] in classes else None
        if not (outputs[origin_slot]["type"] == link_type == declared_out):
            errors.append(f"{where}: type {link_type!r} differs from {origin['type']} output {origin_slot} ({declared_out!r})")
        if link_id not in (outputs[origin_slot].get("links") or []):
            errors.append(f"{where}: not listed on its origin output")
        target_input = inputs[target_slot]
        if target_input.get("link") != link_id:
            errors.append(f"{where}: target input {target_input['name']!r} does not point back at it")
        if target["type"] in classes:
            declared_in, _, _ = get_input_info(classes[target["type"]], target_input["name"])
            if not types_compatible(link_type, declared_in):
                errors.append(f"{where}: {link_type} into {target['type']}.{target_input['name']} ({declared_in})")

    for node in workflow["nodes"]:
        errors += _validate_ui_node(node, classes, links)
    return errors


FRONTEND_ONLY_NODES = ("Note", "MarkdownNote")
"""Nodes the frontend registers itself (``isVirtualNode``): one text widget, no sockets, never in a queued prompt."""


def _validate_frontend_node(node: dict, where: str) -> list[str]:
    errors = []
    if node.get("inputs") or node.get("outputs"):
        errors.append(f"{where}: a note has no sockets")
    values = node.get("widgets_values", [])
    if len(values) != 1 or not isinstance(values[0], str):
        errors.append(f"{where}: a note holds one text widget value, not {values!r}")
    return errors


def _validate_ui_node(node: dict, classes: dict[str, type], links: dict) -> list[str]:
    where = f"node {node['id']} ({node['type']})"
    if node["type"] in FRONTEND_ONLY_NODES:
        return _validate_frontend_node(node, where)
    if node["type"] not in classes:
        return [f"{where}: unknown node type"]
    cls = classes[node["type"]]
    errors = []
    declared = {name: (input_type, options, required) for name, input_type, options, required in _declared_inputs(cls)}
    outputs = node.get("outputs", [])
    if [o["type"] for o in outputs] != list(cls.RETURN_TYPES):
        errors.append(f"{where}: outputs {[o['type'] for o in outputs]} differ from RETURN_TYPES {list(cls.RETURN_TYPES)}")
    if [o["name"] for o in outputs] != list(getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)):
        errors.append(f"{where}: output names differ from RETURN_NAMES")
    linked = set()
    for slot, entry in enumerate(node.get("inputs", [])):
        if entry["name"] not in declared:
            errors.append(f"{where}: input {entry['name']!r} is not declared")
            continue
        input_type, options, _ = declared[entry["name"]]
        if entry["type"] != input_type:
            errors.append(f"{where}: input {entry['name']!r} has type {entry['type']!r}, declared {input_type!r}")
        if _is_widget(input_type, options) != ("widget" in entry):
            errors.append(f"{where}: input {entry['name']!r} should{'' if _is_widget(input_type, options) else ' not'} be a widget input")
        if entry.get("link") is not None:
            link = links.get(entry["link"])
            if link is None or (link[3], link[4]) != (node["id"], slot):
                errors.append(f"{where}: input {entry['name']!r} points at link {entry['link']} that does not end here")
            linked.add(entry["name"])
    for name, (input_type, options, required) in declared.items():
        if required and not _is_widget(input_type, options) and name not in linked:
            errors.append(f"{where}: required input {name!r} is not connected")

    layout = _widget_layout(cls)
    values = node.get("widgets_values", [])
    if len(values) != len(layout):
        errors.append(f"{where}: {len(values)} widgets_values for {len(layout)} widgets {[n or t for n, t, _ in layout]}")
    else:
        for (name, input_type, options), value in zip(layout, values):
            errors += _check_widget_value(where, name, input_type, options, value)
    return errors


def ui_to_api(workflow: dict, classes: dict[str, type]) -> dict:
    """The API prompt the frontend queues for a UI workflow (without ``_meta``)."""
    links = {link[0]: link for link in workflow["links"]}
    prompt = {}
    for node in workflow["nodes"]:
        if node["type"] in FRONTEND_ONLY_NODES:
            continue
        cls = classes[node["type"]]
        named = [(name, value) for (name, _, _), value in zip(_widget_layout(cls), node["widgets_values"]) if name is not None]
        values = dict(named)
        for entry in node.get("inputs", []):
            if entry.get("link") is not None:
                link = links[entry["link"]]
                values[entry["name"]] = [str(link[1]), link[2]]
        order = [name for name, *_ in _declared_inputs(cls)]
        prompt[str(node["id"])] = {"inputs": {k: values[k] for k in order if k in values}, "class_type": node["type"]}
    return prompt
