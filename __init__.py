"""ComfyUI entry point of the Show-1 node pack.

ComfyUI imports this file as a package (``spec_from_file_location``), so the nodes are
imported relatively (never ``import nodes``: that name is ComfyUI's own ``nodes.py``).
The engine, ``show1_core``, is imported absolutely: from the environment when the pack
was installed with pip, otherwise from this folder (a ``git clone`` into ``custom_nodes``).
"""

import importlib.util
import os
import sys

if importlib.util.find_spec("show1_core") is None:  # appended, so this folder shadows no other module
    sys.path.append(os.path.dirname(os.path.abspath(__file__)))

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS  # noqa: E402

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
