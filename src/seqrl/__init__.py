"""seqrl: offline reinforcement learning as sequence modelling.

Importing the package has no side effects; submodules are imported where used.
"""

__version__ = "0.1.0"
