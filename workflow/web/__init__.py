"""The web front end: a JSON API, server-rendered German pages and a live OParl endpoint (FastAPI)."""

from .app import create_app

__all__ = ["create_app"]
