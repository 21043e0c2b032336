"""selfalign: self-alignment of code models."""

__version__ = "0.1.0"
