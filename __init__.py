"""ComfyUI entry point of the Show-1 node pack.

ComfyUI imports this file as a package (``spec_from_file_location``), so the nodes are
imported relatively (never ``import nodes``: that name is ComfyUI's own ``nodes.py``).
The engine, ``show1_core``, is imported absolutely: from the environment when the pack
was installed with pip, otherwise the copy in this folder (a ``git clone`` into
``custom_nodes``) is registered under its own name, leaving ``sys.path`` untouched.

``WEB_DIRECTORY`` holds only the nodes' help pages (``web/docs/<node id>.md``): ComfyUI serves
it at ``/extensions/<pack folder>/``, where the frontend's node help panel looks for them.
"""

import importlib.util
import os
import sys


def _register_bundled_show1_core() -> None:
    """Make ``import show1_core`` find the package beside this file, without adding this folder to ``sys.path``."""
    package = os.path.join(os.path.dirname(os.path.abspath(__file__)), "show1_core")
    spec = importlib.util.spec_from_file_location("show1_core", os.path.join(package, "__init__.py"), submodule_search_locations=[package])
    module = importlib.util.module_from_spec(spec)
    sys.modules["show1_core"] = module
    spec.loader.exec_module(module)


# ComfyUI imports this folder as a package. A tool that imports the file on its own (pytest does, when
# the checkout folder's name is no Python identifier, e.g. "show1-comfyui") gets an empty module.
if __package__:
    if importlib.util.find_spec("show1_core") is None:
        _register_bundled_show1_core()

    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

    WEB_DIRECTORY = "./web"

    __all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
