"""Evaluation: OCR + province metrics on labelled crop folders (``thaiplate eval``)."""
