"""thaiplate: Thai licence-plate recognition (detect -> crop -> CTC read -> province)."""

__version__ = "0.1.0"
