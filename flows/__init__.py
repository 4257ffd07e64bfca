"""Prefect flows that sequence sharpen rounds: `python -m flows.loop`."""
