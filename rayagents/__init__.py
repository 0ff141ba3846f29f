"""rayagents: distributed Unity ML-Agents training on Ray.

The subpackages live in the repository's top-level folders (``rayagents.cluster`` is ``cluster/``, and so on),
mapped by setuptools' ``package-dir``. ``extend_path`` lets an installed copy serve the subpackages when this
folder shadows it (Python started in the repository root with a regular, non-editable install).
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
