"""sharpen: versioned, resumable self-improvement loops for language models, on DVC."""

__version__ = "0.1.0"
